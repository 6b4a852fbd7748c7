#!/usr/bin/env bash
# Every reward-model GPU check in one run, for a session lent one H100/H200 (under 10 minutes in all):
#   1. pytest -m gpu   tests/rewardmodel/ml/test_gpu.py: bf16 training, GPU scores = CPU scores, packed (padding-free)
#                      rewards and gradients = padded ones with sdpa / flex attention / flash-attention (if installed)
#   2. bench/rm_gpu.py         training tokens/s + MFU and stage-2 scoring pairs/s + tokens/s, Qwen3-0.6B-shaped,
#                              library vs naive padded loop
#   3. bench/rm_trl_compare.py our loop vs TRL's RewardTrainer, same Qwen3-0.6B-shaped model and pairs (one GPU)
#   4. bench/rm_long_memory.py measured peak memory of one 16K pair, gradient checkpointing, padded vs padding-free
#   (the pytest step also launches the sharded path, FSDP2 under torchrun, on every GPU with NCCL)
# Each step has its own time limit (about 9 minutes together, to fit one 10-minute device call); a step that fails
# or times out does not stop the next. Everything goes under $OUT (default ./gpu_out): <step>.log per step,
# env.txt, summary.txt (rc and seconds per step).
#
# The benchmarks read the shared pairs from ../shared/data, which stays behind when only the checkout travels: copy
# it to .gpudata/ (ignored; name it in carry) and the script points SYNPREF_DATA_DIR there.
#
#   bash bench/gpu_checks.sh            # on the GPU machine
#   bash bench/gpu_checks.sh --smoke    # on CPU: every step with --smoke shapes, to check the script itself
#   STEPS="pytest_gpu rm_trl_compare" bash bench/gpu_checks.sh   # a rerun of some steps only
#
# Python: $PYTHON, else .venv/bin/python when its torch sees CUDA, else python3. The device image's python3 has
# torch and transformers but not trl / datasets (step 3 needs them): carry their wheels in .whl/ (see
# docs/benchmarks.md); they are installed into /tmp/site first when present.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
SMOKE=""
[ "${1:-}" = "--smoke" ] && SMOKE="--smoke"
SCALE=1
[ -n "$SMOKE" ] && SCALE=4 # CPU smoke runs are slower than the GPU runs they stand for

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    PY=.venv/bin/python
  elif [ -n "$SMOKE" ] && [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
  else
    PY=python3
  fi
fi
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  # A carried transformers that does not import beside the image's packages falls back to the image's own.
  if ! "$PY" -c "import transformers.models.qwen3" >/dev/null 2>&1; then
    echo "the carried transformers does not import here; using the image's" >&2
    rm -rf /tmp/site/transformers /tmp/site/transformers-*
  fi
fi
if [ ! -d ../shared/data ] && [ -d .gpudata ]; then
  export SYNPREF_DATA_DIR=$PWD/.gpudata
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1

step() { # step NAME LIMIT_S COMMAND...   (only the steps named in $STEPS, when it is set)
  local name=$1 limit=$(($2 * SCALE)) start rc
  shift 2
  case " ${STEPS:-$name} " in *" $name "*) ;; *) return 0 ;; esac
  echo "== $name (limit ${limit}s): $*"
  start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc $(($(date +%s) - start))s" | tee -a "$OUT/summary.txt"
  tail -n 20 "$OUT/$name.log"
}

{
  date -u
  nvidia-smi 2>&1 || echo "no nvidia-smi"
  "$PY" -c "import sys, torch, transformers; print(sys.version); print('torch', torch.__version__, 'cuda', torch.cuda.is_available()); print('transformers', transformers.__version__)"
  "$PY" -c "import flash_attn; print('flash_attn', flash_attn.__version__)" 2>&1 | tail -n 1
  "$PY" -c "import trl, datasets; print('trl', trl.__version__, 'datasets', datasets.__version__)" 2>&1 | tail -n 1
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
: >"$OUT/summary.txt"

# -c /dev/null and --confcutdir: the pure ML tests only (the device has no Django, PostgreSQL or pytest-django).
step pytest_gpu 100 "$PY" -m pytest -c /dev/null --rootdir . --confcutdir tests/rewardmodel/ml -p no:cacheprovider \
  -o "markers=gpu: needs CUDA" -q -rs -m gpu tests/rewardmodel/ml/test_gpu.py
step rm_gpu 170 "$PY" bench/rm_gpu.py --steps 20 --score-pairs 1000 $SMOKE
if "$PY" -c "import trl, datasets" 2>/dev/null; then
  step rm_trl_compare 200 "$PY" bench/rm_trl_compare.py --steps 20 --eval-pairs 200 --no-scaling $SMOKE
else
  echo "rm_trl_compare rc=skipped (trl/datasets not importable: carry their wheels)" | tee -a "$OUT/summary.txt"
fi
step rm_long_memory 90 "$PY" bench/rm_long_memory.py $SMOKE
echo "== summary"
cat "$OUT/summary.txt"
