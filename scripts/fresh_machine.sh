#!/usr/bin/env bash
# Runs a command as a fresh machine would see this checkout: what earlier sessions or `make test-slurm` left on the
# host is hidden, in a private mount namespace (root; nothing changes outside the command).
#
#   bash scripts/fresh_machine.sh make test
#
# Hidden: the SLURM and munge commands (each path on PATH, /usr/sbin and /sbin: an empty, non-executable file is
# bind-mounted over it, so `shutil.which('srun')` finds nothing), /etc/slurm, /etc/slurm-llnl, /etc/munge, /run/munge
# (empty tmpfs), $HOME (a new empty folder: no caches, no ~/.config, no hub or torch downloads) and the checkout's
# git-ignored state folders (dataset/, outputs/, reports/, .local_slurm/: empty tmpfs where present).
# Kept: the Python interpreter (pyenv's root is kept by its path when it lives under the old $HOME) and the
# Debian packages that `make install` itself installs. CI runs `make test` through it (.ci/run): the fast suite
# must pass on a machine where none of the hidden things exist.
set -euo pipefail
SLURM_COMMANDS=(srun sbatch sinfo squeue scancel sacct scontrol salloc sattach sstat sprio sshare sreport sacctmgr
                strigger sview slurmctld slurmd slurmdbd slurmstepd munge unmunge munged mungekey remunge)
SLURM_ETC=(/etc/slurm /etc/slurm-llnl /etc/munge /run/munge /var/run/munge)
STATE=(dataset outputs reports .local_slurm)

[ $# -gt 0 ] || { echo "usage: bash scripts/fresh_machine.sh COMMAND [ARGS...]" >&2; exit 2; }
if [ -z "${FRESH_MACHINE_NS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "fresh_machine: needs root (a mount namespace)" >&2; exit 2; }
    exec env FRESH_MACHINE_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
unset FRESH_MACHINE_NS

scratch="$(mktemp -d /tmp/fresh_machine.XXXXXX)"
mount -t tmpfs tmpfs "$scratch"   # private to the namespace: gone when the command ends
trap 'cd / && umount -l "$scratch" && rmdir "$scratch"' EXIT
: >"$scratch/absent" && chmod 0644 "$scratch/absent"
hidden=()
for name in "${SLURM_COMMANDS[@]}"; do
    while read -r path; do
        [ -n "$path" ] && [ -e "$path" ] || continue
        mount --bind "$scratch/absent" "$path" && hidden+=("$path")
    done < <(PATH="$PATH:/usr/sbin:/sbin" type -ap "$name" 2>/dev/null | xargs -r readlink -f | sort -u)
done
for dir in "${SLURM_ETC[@]}"; do
    [ -d "$dir" ] && mount -t tmpfs tmpfs "$dir" && hidden+=("$dir")
done
for dir in "${STATE[@]}"; do
    [ -d "$dir" ] && mount -t tmpfs tmpfs "$dir" && hidden+=("$PWD/$dir")
done

# A new, empty home. pyenv's shims find their interpreters through PYENV_ROOT (default ~/.pyenv): keep it.
if [ -z "${PYENV_ROOT:-}" ] && [ -d "$HOME/.pyenv" ]; then
    export PYENV_ROOT="$HOME/.pyenv"
fi
hidden+=("$HOME")
mkdir -p "$scratch/home"
export HOME="$scratch/home"
unset XDG_CACHE_HOME XDG_CONFIG_HOME XDG_DATA_HOME HF_HOME HF_HUB_CACHE TORCH_HOME UV_CACHE_DIR PIP_CACHE_DIR \
      SLURM_CONF AUDIOCRAFT_MMD_DORA_DIR AUDIOCRAFT_MMD_TEAM AUDIOCRAFT_TEAM AUDIOCRAFT_CONFIG \
      AUDIOCRAFT_CLUSTER AUDIOCRAFT_DORA_DIR

# What submitit's shutil.which sees (bash's own lookup still names a non-executable file): no executable left.
IFS=: read -ra path_dirs <<<"$PATH:/usr/sbin:/sbin"
for name in "${SLURM_COMMANDS[@]}"; do
    for dir in "${path_dirs[@]}"; do
        if [ -f "$dir/$name" ] && [ -x "$dir/$name" ]; then
            echo "fresh_machine: error: $dir/$name is still executable" >&2
            exit 2
        fi
    done
done
echo "fresh_machine: hidden ${#hidden[@]} host paths (${hidden[*]}); HOME=$HOME"
"$@"
