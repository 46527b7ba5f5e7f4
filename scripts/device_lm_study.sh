#!/usr/bin/env bash
# The token-LM study (issue 30) at 10x the LM size and updates on one GPU: tokens precomputed here on CPU and
# carried; every (codec, seed) trains in its own process at once (delay, then flatten), so the 16 LMs share
# the device; aim: within 8 minutes. Untested on a device so far (no machine was lent to issue 30).
#
#   1. Here (CPU): bash scripts/device_check.sh --prepare     # .whl/: audiocraft and the packages the image lacks
#                  bash scripts/device_lm_study.sh --prepare CODEC_RESULTS.json
#      -> device_data/lm_study/{codecs.json,tokens/} (the token caches of python -m audiocraft_mmd.studies.lm.tokens
#         --tokens-only; int16, a few MiB per codec).
#   2. run(command="bash scripts/device_lm_study.sh", carry=[".whl", "device_data"], timeout_s=600)
#      -> $OUT/lm_study/{report.md,results.json,runs/}: copy into docs/lm_study/device/ and commit.
#   Rehearsal here (CPU, a few updates per LM, the same processes and report): bash scripts/device_lm_study.sh --dry-run
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE=device
[ "${1:-}" = --prepare ] && MODE=prepare
[ "${1:-}" = --dry-run ] && MODE=dry
DATA="$ROOT/device_data/lm_study"
SEEDS="${SEEDS:-0 1}"
CODECS="${CODECS:-baseline mmd mmd_parallel mmd_conditional}"
if [ "$MODE" = prepare ]; then
  [ -f "${2:-}" ] || { echo "usage: $0 --prepare CODEC_RESULTS.json"; exit 2; }
  mkdir -p "$DATA"
  cp "$2" "$DATA/codecs.json"
  # shellcheck disable=SC2086
  .venv/bin/python -m audiocraft_mmd.studies.lm.tokens --codec-results "$DATA/codecs.json" --seeds $SEEDS --codecs $CODECS \
    --out "$DATA" --tokens-only || exit 1
  du -sh "$DATA"
  exit 0
fi
PY=python3
DEVICE=cuda
ARGS="--scale 10"
OUTDIR="${OUT:-/tmp}/lm_study"
if [ "$MODE" = dry ]; then
  PY="$ROOT/.venv/bin/python"
  DEVICE=cpu
  ARGS="--scale 10 --dry-run"
  OUTDIR=$(mktemp -d /tmp/device_lm_study.XXXXXX)/lm_study
  [ -f "$DATA/codecs.json" ] || { echo "no $DATA/codecs.json: run --prepare first"; exit 2; }
else
  SITE=$(mktemp -d)/site
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl || echo "wheel install failed"
  STUBS=$(mktemp -d)
  for module in xformers spacy av; do
    PYTHONPATH="$SITE" "$PY" -c "import $module" >/dev/null 2>&1 || cp -r "scripts/device_stubs/$module" "$STUBS/"
  done
  export PYTHONPATH="$ROOT:$SITE:$STUBS"
fi
mkdir -p "$OUTDIR"
cp -r "$DATA/tokens" "$OUTDIR/"  # the token caches: no codec is loaded while they match
start=$(date +%s)
pids=""
for seed in $SEEDS; do
  for codec in $CODECS; do
    # shellcheck disable=SC2086
    "$PY" -m audiocraft_mmd.studies.lm.tokens --codec-results "$DATA/codecs.json" --seeds "$seed" --codecs "$codec" \
      --out "$OUTDIR" --device "$DEVICE" $ARGS --stage train > "$OUTDIR/train_${codec}_${seed}.log" 2>&1 &
    pids="$pids $!"
  done
done
rc=0
for pid in $pids; do wait "$pid" || rc=1; done
# shellcheck disable=SC2086
"$PY" -m audiocraft_mmd.studies.lm.tokens --codec-results "$DATA/codecs.json" --seeds $SEEDS --codecs $CODECS --out "$OUTDIR" \
  $ARGS --stage report || rc=1
echo "trained and reported in $(($(date +%s) - start)) s (exit $rc): $OUTDIR"
[ "$MODE" = dry ] && tail -n 30 "$OUTDIR"/*/report.md "$OUTDIR"/report.md 2>/dev/null | head -40
exit $rc
