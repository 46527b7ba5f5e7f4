#!/usr/bin/env bash
# CI test of the cluster path (issue 41; run by .ci/run, not by `make test`): the commands of docs/cluster.md,
# read from the doc and run verbatim, by a normal user, on a fresh clone of this commit, in a mount namespace
# where apt, dpkg and the Debian packages of the demo set (ffmpeg, FluidSynth, soundfonts, recorded music) are
# hidden. The music is a folder this script writes: six pieces (one at 44.1 kHz, one stereo) and one corrupt
# file. Training is 2 updates of the debug codec on CPU. Then the export is loaded by plain audiocraft in a
# process that never imports audiocraft_mmd, and by our loader. Passes when every command succeeds, the builder
# lists the corrupt file, the manifests hold every other piece, and `make data` (which needs the hidden packages)
# stops naming them.
#
# Run as root (it adds the user `cluster-ci` and makes the namespace): `bash scripts/cluster_path.sh`.
# The install uses a warm uv cache: a copy of root's (CLUSTER_PATH_COLD=1 starts from an empty one, which
# downloads ~5.7 GB). The work folder is kept on failure (its path is printed).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_AS=${CLUSTER_PATH_USER:-cluster-ci}
[ "$(id -u)" = 0 ] || { echo "error: run as root (it adds a user and a mount namespace)" >&2; exit 2; }
command -v unshare >/dev/null || { echo "error: unshare (util-linux) is needed" >&2; exit 2; }
id -u "$RUN_AS" >/dev/null 2>&1 || useradd -m -s /bin/bash "$RUN_AS"
HOME_U=$(getent passwd "$RUN_AS" | cut -d: -f6)
WORK=$(mktemp -d /tmp/cluster_path.XXXXXX)
chmod 755 "$WORK"
start=$(date +%s)
step() { echo "cluster path [$(( $(date +%s) - start )) s]: $*"; }

step "fresh clone of $(git -C "$REPO" rev-parse --short HEAD) in $WORK/repo"
git clone -q "$REPO" "$WORK/repo"
git -C "$WORK/repo" checkout -q "$(git -C "$REPO" rev-parse HEAD)"
# The doc's block, between its markers, fences dropped: what the user types.
sed -n '/<!-- cluster-path:begin/,/<!-- cluster-path:end/p' "$REPO/docs/cluster.md" | grep -v '^<!--' | grep -v '^```' \
  > "$WORK/commands.sh"
[ -s "$WORK/commands.sh" ] || { echo "error: no cluster-path block in docs/cluster.md" >&2; exit 1; }
rm -rf "${HOME_U:?}/.cache/uv"
SEED=${UV_CACHE_DIR:-$HOME/.cache/uv}
if [ "${CLUSTER_PATH_COLD:-0}" != 1 ] && [ -d "$SEED" ]; then
  step "warm uv cache: copy of $SEED ($(du -sh "$SEED" | cut -f1))"
  mkdir -p "$HOME_U/.cache" && cp -a "$SEED" "$HOME_U/.cache/uv"
fi
chown -R "$RUN_AS:" "$WORK" "$HOME_U"

# What a cluster node lacks: apt/dpkg and the Debian packages' binaries and data, hidden in this namespace only:
# the binaries by an overlay on /usr/bin whose whiteouts delete them (a file mounted over one would still be
# found on PATH, only not executable), the data folders by an empty folder mounted over each.
HIDE_BIN=(apt apt-get apt-cache dpkg dpkg-query ffmpeg ffprobe fluidsynth)
HIDE_DIRS=(/usr/share/sounds /usr/share/games /var/lib/dpkg /etc/apt)
mkdir -p "$WORK/empty_dir" "$WORK/bin_upper" "$WORK/bin_work"
for tool in "${HIDE_BIN[@]}"; do mknod "$WORK/bin_upper/$tool" c 0 0; done
cat > "$WORK/as_user.sh" <<EOF
set -euo pipefail
cd "$WORK/repo"
for tool in ${HIDE_BIN[*]}; do
  ! command -v \$tool >/dev/null || { echo "error: \$tool is still visible" >&2; exit 1; }
done
for folder in ${HIDE_DIRS[*]}; do
  [ ! -d \$folder ] || [ -z "\$(ls -A \$folder)" ] || { echo "error: \$folder is still visible" >&2; exit 1; }
done
python3 scripts/cluster_path.py music "$WORK/music"
PS4='+ [\$(date +%T)] '
set -x
MUSIC="$WORK/music"
XP="solver=compression/encodec_mmd_debug dset=audio/mine device=cpu optim.epochs=1 optim.updates_per_epoch=2 \
mmd.num_batches=2 mmd.valid_batches=1 liveness.valid_batches=1"
source "$WORK/commands.sh" 2>&1 | tee "$WORK/commands.log"
set +x
EXPORT=exported/mine/compression_state_dict.bin
.venv/bin/python scripts/cluster_path.py plain \$EXPORT "$WORK/codes.pt"
.venv/bin/python scripts/cluster_path.py ours \$EXPORT "$WORK/codes.pt" --egs egs/mine --log "$WORK/commands.log"
# The demo set needs the hidden packages: make data stops there, naming them and how to get them.
! make data > "$WORK/make_data.log" 2>&1 || { echo "error: make data passed without its packages" >&2; exit 1; }
grep -q 'missing system packages (make data, make test): fluidsynth fluid-soundfont-gm' "$WORK/make_data.log" \
  || { cat "$WORK/make_data.log" >&2; exit 1; }
echo "make data without the Debian packages:"; grep -A9 'missing system packages' "$WORK/make_data.log"
EOF
hide_and_run() {
  mount -t overlay overlay -o "lowerdir=/usr/bin,upperdir=$WORK/bin_upper,workdir=$WORK/bin_work" /usr/bin
  for path in $HIDDEN_DIRS; do
    [ -d "$path" ] && mount --bind "$WORK/empty_dir" "$path"
  done
  runuser -u "$RUN_AS" -- env -i HOME="$HOME_U" USER="$RUN_AS" PATH=/usr/local/bin:/usr/bin:/bin \
    SSL_CERT_FILE="${SSL_CERT_FILE:-}" PIP_CERT="${PIP_CERT:-}" OMP_NUM_THREADS=1 bash "$WORK/as_user.sh"
}
export -f hide_and_run
export WORK RUN_AS HOME_U
export HIDDEN_DIRS="${HIDE_DIRS[*]}"  # a string: bash exports no arrays
step "as $RUN_AS, apt and the Debian packages hidden: the commands of docs/cluster.md"
if unshare -m --propagation private bash -c hide_and_run; then
  step "passed"
  rm -rf "$WORK" "${HOME_U:?}/.cache/uv"
else
  rc=$?
  step "FAILED (exit $rc); kept $WORK"
  exit "$rc"
fi
