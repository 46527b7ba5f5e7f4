#!/usr/bin/env bash
# GPU check of audiocraft-mmd (issues 18, 29): CUDA tests, MMD kernel throughput, the estimators' throughput against
# n and the TF32 peak, step cost of the exact, bank, closed_form, features and features_bank estimators, and a
# 2-minute EnCodec-MMD training run on real music, the step time and memory of fine-tuning the released 32 kHz
# architecture (random weights in transformers' format, issue 40); one JSON under docs/gpu/.
#
# HOW TO RUN IT ON A LENT GPU MACHINE (the device tool's `run`; the machine has no network):
#   1. Here, on the CPU machine, once (needs PyPI; ~2 min; fills two git-ignored folders):
#        bash scripts/device_check.sh --prepare
#      -> .whl/ (wheels for Python 3.12 of what the GPU image lacks, ~4 MiB) and device_data/mmd_music
#      (~0.1 h of rendered music as FLAC, ~12 MiB: the git-ignored data cannot travel otherwise). It prints their sizes: the tracked tree plus both
#      must stay under the 64 MiB a call carries.
#   2. run(command="bash scripts/device_check.sh", carry=[".whl", "device_data"], timeout_s=600)
#      Typical duration ~8 min; the stage timeouts add up to 560 s (env 20 + doctor 20 + cuda_tests 70 +
#      bench_mmd_4096 40 + bench_estimators 75 + bench_step 115 + bench_finetune 100 + dora_train 120), 580 s with
#      ~20 s for the wheel install. The JSON comes back under
#      $OUT and is also written to docs/gpu/device_check-<UTC time>.json in the machine's copy: copy it from
#      the run's files into docs/gpu/ here and commit it. Give the machine back right after.
#   Dry run here (CPU, tiny sizes, same stages and JSON, in a throwaway folder): bash scripts/device_check.sh --dry-run
#   With --emulate, the dry run uses a fresh venv that only sees the packages the GPU image has, plus the
#   carried wheels (Python 3.11 builds of them) and the stand-ins: the device's import path, tested on CPU.
#
# Environment on the GPU machine: its python3 (3.12, torch 2.11+cu130, torchaudio, numpy, einops,
# torchmetrics, transformers, pytest, ... preinstalled). The carried wheels are installed with
# `pip install --no-index --no-deps --target` into a temporary folder put on PYTHONPATH with the repository;
# xformers, spacy and av (imported by audiocraft, unused by the compression solver, too large to carry) are
# replaced by scripts/device_stubs only where missing. Every stage has its own timeout and records its exit
# status; a failed stage does not stop the others.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE=device
EMULATE=0
for arg in "$@"; do
  case "$arg" in
    --prepare) MODE=prepare ;;
    --dry-run) MODE=dry ;;
    --emulate) EMULATE=1 ;;
    *) echo "unknown argument $arg (use --prepare, --dry-run [--emulate])"; exit 2 ;;
  esac
done
# What the GPU image lacks, at the versions requirements.lock pins for Python 3.12 (the image's Python).
WHEEL_NAMES="audiocraft flashy dora-search treetable retrying submitit hydra-core omegaconf antlr4-python3-runtime
hydra-colorlog colorlog julius num2words docopt librosa soxr audioread pooch platformdirs decorator soundfile cffi
pycparser"
locked_specs() {  # name==version for each of WHEEL_NAMES, read from the lock with the doctor's parser
  python3 - $WHEEL_NAMES <<'PYEOF'
import sys
sys.path.insert(0, '.')
from audiocraft_mmd.doctor import LOCK_PATH, read_lock
pins = read_lock(LOCK_PATH.read_text(), {'python_full_version': '3.12.3', 'python_version': '3.12'})
missing = [n for n in sys.argv[1:] if n not in pins]
if missing:
    sys.exit(f'requirements.lock has no pin for {missing}')
print(' '.join(f'{n}=={pins[n]}' for n in sys.argv[1:]))
PYEOF
}
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
--platform manylinux2014_x86_64 --platform manylinux1_x86_64"

fetch_wheels() {  # fetch_wheels DIR PYVERSION: binary wheels for that Python, else build pure-Python ones
  local dir="$1" pyver="$2" spec specs
  mkdir -p "$dir"
  specs=$(locked_specs) || return 1
  for spec in $specs; do
    # shellcheck disable=SC2086
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
      $PLATFORMS -d "$dir" "$spec" 2>/dev/null \
      || python3 -m pip wheel -q --no-deps -w "$dir" "$spec" \
      || { echo "no wheel for $spec"; return 1; }
  done
}

if [ "$MODE" = prepare ]; then
  fetch_wheels .whl 3.12 || exit 1
  if [ ! -f device_data/mmd_music/egs/train/data.jsonl ]; then
    PYTHONPATH="$ROOT" .venv/bin/python -m audiocraft_mmd.data.prepare --root device_data/mmd_music --hours 0.1 \
      --sources rendered --seed 0 --no-progress || exit 1
    .venv/bin/python scripts/device_check_tools.py to_flac device_data/mmd_music || exit 1
  fi
  # Check that the wheels install for Python 3.12 and that the torch-free ones import.
  if python3.12 --version >/dev/null 2>&1; then
    check=$(mktemp -d)
    python3.12 -m pip install -q --no-index --no-deps --no-compile --target "$check" .whl/*.whl \
      && PYTHONPATH="$check" python3.12 -c "import antlr4, num2words, treetable, retrying, colorlog, platformdirs, decorator" \
      && echo "wheels install and import under $(python3.12 --version)"
    rm -rf "$check"
  fi
  tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  echo "sizes: tracked $((tracked / 1048576)) MiB, .whl $(du -sm .whl | cut -f1) MiB," \
       "device_data $(du -sm device_data | cut -f1) MiB (all together must stay under 64 MiB)"
  exit 0
fi

WORK=$(mktemp -d /tmp/device_check.XXXXXX)
PY=python3
DEVICE=cuda
DATA="$ROOT/device_data/mmd_music"
if [ "$MODE" = dry ]; then
  DEVICE=cpu
  PY="$ROOT/.venv/bin/python"
  [ -f "$DATA/egs/train/data.jsonl" ] || DATA="$ROOT/dataset/mmd_music"
  if [ "$EMULATE" = 1 ]; then  # a venv that sees only the GPU image's packages, plus the carried wheels
    python3.11 -m venv "$WORK/venv" && "$PY" scripts/device_check_tools.py emulate "$PY" "$WORK/image"
    echo "$WORK/image" > "$("$WORK/venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')/image.pth"
    fetch_wheels "$WORK/whl311" 3.11 || exit 1
    PY="$WORK/venv/bin/python"
    WHL="$WORK/whl311"
  fi
fi
WHL="${WHL:-$ROOT/.whl}"
SITE="$WORK/site"
if ls "$WHL"/*.whl >/dev/null 2>&1 && { [ "$MODE" = device ] || [ "$EMULATE" = 1 ]; }; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHL"/*.whl \
    || echo "wheel install failed"
fi
STUBS="$WORK/stubs"
mkdir -p "$STUBS"
for module in xformers spacy av; do
  PYTHONPATH="$SITE" "$PY" -c "import $module" >/dev/null 2>&1 || cp -r "scripts/device_stubs/$module" "$STUBS/"
done
"$PY" scripts/device_check_tools.py relocate "$DATA" "$WORK/data"  # manifests hold the builder's paths
DATA="$WORK/data"
export PYTHONPATH="$ROOT:$SITE:$STUBS" PYTHONUNBUFFERED=1 MMD_DEVICE_DATA="$DATA"
export AUDIOCRAFT_MMD_DORA_DIR="$WORK/dora"
DATASOURCE="datasource.train=$DATA/egs/train datasource.valid=$DATA/egs/valid"
DATASOURCE="$DATASOURCE datasource.evaluate=$DATA/egs/evaluate datasource.generate=$DATA/egs/generate"

stage() {  # stage NAME TIMEOUT_S COMMAND...: run with a timeout (x SLOW), record "rc seconds" in NAME.status
  local name="$1" limit="$(($2 * SLOW))" start rc
  shift 2
  echo "== $name (timeout ${limit}s)"
  start=$(date +%s%N)
  timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "$rc $((ms / 1000)).$(printf %03d $((ms % 1000)))" >"$WORK/$name.status"
  tail -n 4 "$WORK/$name.log"
  echo "== $name: exit $rc"
}

# The dry run checks the stages' plumbing on 2 shared CPU cores: small sizes, timeouts x 4 (training stays 60 s).
SLOW=1; REPS=3; UPDATES=32; VALID_SAMPLES=16
if [ "$MODE" = dry ]; then
  SLOW=4; REPS=1; UPDATES=8; VALID_SAMPLES=64
  SIZES="512"; BLOCKS="256 512"; STEP_ARGS="--configs debug --debug-num-batches 2 --debug-repeats 1"
  EST_SIZES="512 1024"; EST_BLOCK=512
  TRAIN="solver=compression/encodec_mmd_debug device=cpu dataset.num_workers=0"; TRAIN_S=15
  FINETUNE_ARGS="--release small --batch 1 --num-batches 2 --modes encoder --threads 1"
else
  # 12032 rows: a paper macro-batch per GPU (batch 8 x 32 batches x 47 aligned frames). Tiles of 4096 only: the
  # H100 run in docs/gpu/ measured 1024 and 2048 (launch-bound, 5x and 1.4x slower).
  SIZES="12032"; BLOCKS="4096"
  EST_SIZES="12032 50000 100000"; EST_BLOCK=4096
  STEP_ARGS="--configs paper --paper-batch 8 --paper-num-batches 32 --repeats 2 --threads 8"
  TRAIN="solver=compression/encodec_mmd_32khz device=cuda dataset.num_workers=6"; TRAIN_S=120
  # one rank's share of the paper's batch (64 over 8 GPUs); 16 steps per macro-batch keep both modes within 100 s
  FINETUNE_ARGS="--batch 8 --num-batches 16 --threads 8"
fi

stage env 20 "$PY" scripts/device_check_tools.py env "$WORK/env.json"
# The image's packages against the lock (README, "The environment lock"): versions only where installed.
# shellcheck disable=SC2046
stage doctor 20 "$PY" -m audiocraft_mmd.doctor --installed-only --without $(ls "$STUBS")  # stand-ins: not probed
stage cuda_tests 70 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" tests/gpu tests/losses/test_mmd_bank.py \
  tests/test_distributed.py
for block in $BLOCKS; do
  # shellcheck disable=SC2086
  stage "bench_mmd_$block" 40 "$PY" benchmarks/bench_mmd.py --device "$DEVICE" --sizes $SIZES --reps "$REPS" \
    --block-size "$block" --json "$WORK/bench_mmd_$block.json"
done
# Each estimator stops before its 18 s budget would be passed (a row says so): 3 x 18 s plus start-up fit in 75 s.
PEAK=$("$PY" scripts/device_check_tools.py peak "$WORK/env.json")  # empty on CPU: the table says n/a
# shellcheck disable=SC2086
stage bench_estimators 75 "$PY" benchmarks/estimator_throughput.py --device "$DEVICE" --sizes $EST_SIZES \
  --reps "$REPS" --block-size "$EST_BLOCK" --budget-s 18 ${PEAK:+--peak-tflops "$PEAK"} \
  --json "$WORK/bench_estimators.json"
# shellcheck disable=SC2086
stage bench_step 115 "$PY" benchmarks/bench_step.py $STEP_ARGS --device "$DEVICE" --data "$DATA" \
  --estimators exact bank closed_form features features_bank --json "$WORK/bench_step.json"
# Fine-tuning the released 32 kHz architecture (random weights published as facebook/encodec_32khz in a hub cache,
# offline), encoder-only and full: seconds per update without / with the MMD, peak GPU memory.
# shellcheck disable=SC2086
stage bench_finetune 100 "$PY" benchmarks/bench_finetune.py $FINETUNE_ARGS --device "$DEVICE" --data "$DATA" \
  --json "$WORK/bench_finetune.json"
# Training for TRAIN_S seconds, then stopped (exit 124 is the planned stop): on the device, epochs of 32 updates (one
# macro-batch) and 16 valid samples, so that one ends (history.json) before the stop (the H100 run took 133 s for an
# epoch of 64 updates, data-loading bound, and 64 valid samples); evaluate/generate (which need ffmpeg) never come.
# shellcheck disable=SC2086
stage dora_train "$TRAIN_S" "$PY" -m dora run $TRAIN $DATASOURCE optim.epochs=1000 \
  optim.updates_per_epoch="$UPDATES" dataset.valid.num_samples="$VALID_SAMPLES" evaluate.every=1000 \
  generate.every=1000 checkpoint.save_every=1000
"$PY" scripts/device_check_tools.py dora "$AUDIOCRAFT_MMD_DORA_DIR/xps" "$WORK/dora_train.json"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
if [ "$MODE" = dry ]; then REPORT="$WORK/device_check-dry-$STAMP.json"; else REPORT="docs/gpu/device_check-$STAMP.json"; fi
"$PY" scripts/device_check_tools.py report "$WORK" "$REPORT"
if [ -n "${OUT:-}" ]; then cp "$REPORT" "$OUT/"; fi
echo "report: $REPORT (work folder $WORK)"
