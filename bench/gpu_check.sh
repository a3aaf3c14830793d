#!/usr/bin/env bash
# First run on a GPU machine (issue 25): install, tracker tests on CUDA, speed and accuracy
# benchmarks on CUDA, all figures in one JSON. Meant to finish in under 10 minutes (each step
# has a time limit; all limits together: 11 minutes).
#
#   bash bench/gpu_check.sh [OUT_DIR]        (default: bench/results/gpu_check)
#
# Installation: `make install` pins the CPU torch wheel and needs the network, so it is not
# used here. The script takes the Python of $SAMEM_PY, else .venv/bin/python if it exists
# (a venv made with the machine's CUDA torch), else python3; with SAMEM_PIP_INSTALL=1 it first
# runs `pip install -e .` into that Python (offline: --no-deps --no-build-isolation, keeping
# the machine's torch). Every step's exit status and time go into OUT_DIR/gpu_check.json; a
# failed step does not stop the ones after it.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/gpu_check}
mkdir -p "$OUT"
PY=${SAMEM_PY:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export OMP_WAIT_POLICY=PASSIVE
STEPS="$OUT/steps.txt"
: > "$STEPS"

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log output, record status and time
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name $rc $((SECONDS - t0))" >> "$STEPS"
  echo "[$name] exit $rc ($(tail -n 1 "$OUT/$name.log" | cut -c1-150))"
}

if [ "${SAMEM_PIP_INSTALL:-0}" = 1 ]; then
  step install 300 "$PY" -m pip install --no-deps --no-build-isolation -e .
fi
step environment 60 "$PY" -c "
import json, platform, torch, samem
cuda = torch.cuda.is_available()
print(json.dumps({'python': platform.python_version(), 'torch': torch.__version__, 'cuda': cuda,
  'cuda_version': torch.version.cuda, 'gpu': torch.cuda.get_device_name(0) if cuda else None,
  'bf16': bool(cuda and torch.cuda.is_bf16_supported()), 'samem': samem.__version__}))
assert cuda, 'no CUDA device visible to torch'
"
# tracker tests on CUDA: tests/test_track_batch.py's device tests (SAMEM_TEST_DEVICE) compare the
# CUDA tracker with the CPU one, tests/test_track_mixed.py's the padded memory attention with
# one step per memory layout on the GPU; the shipped model's tests load it where torch puts it
step tests_cuda 150 env SAMEM_TEST_DEVICE=cuda "$PY" -m pytest -q -p no:cacheprovider \
  tests/test_track_batch.py tests/test_track_mixed.py tests/test_shipped_model.py
# speed: tracker alone and the analyze pipeline, 1-64 particles (fp32: cuda_bf16=false) and bf16 autocast
step scaling_fp32 200 "$PY" bench/bench_scaling.py --device cuda --threads 4 --particles 1 4 16 32 64 \
  --frames 60 --tracker cuda_bf16=false --json "$OUT/scaling_fp32.json"
step scaling_bf16 120 "$PY" bench/bench_scaling.py --device cuda --threads 4 --particles 4 32 64 \
  --frames 60 --modes tracker --tracker cuda_bf16=true --json "$OUT/scaling_bf16.json"
# accuracy on CUDA (default options, analyze picks CUDA when available): 2 tuning videos per preset
step accuracy_cuda 150 "$PY" bench/bench_accuracy.py --seeds tuning --videos 2 --frames 150 --baseline none \
  --jobs 1 --out "$OUT/accuracy"
"$PY" - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
steps = {}
for line in (out / "steps.txt").read_text().splitlines():
    name, rc, secs = line.split()
    steps[name] = {"exit": int(rc), "seconds": float(secs)}
def load(p):
    p = out / p
    return json.loads(p.read_text()) if p.exists() else None
env_log = (out / "environment.log").read_text().splitlines() if (out / "environment.log").exists() else []
report = {
    "steps": steps,
    "environment": json.loads(env_log[0]) if env_log and env_log[0].startswith("{") else env_log,
    "tests_cuda": (out / "tests_cuda.log").read_text().splitlines()[-1:] if (out / "tests_cuda.log").exists() else None,
    "scaling_fp32": load("scaling_fp32.json"),
    "scaling_bf16": load("scaling_bf16.json"),
    "accuracy_cuda": load("accuracy/accuracy.json"),
}
(out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
print(f"wrote {out / 'gpu_check.json'}: " + ", ".join(f"{k} exit {v['exit']}" for k, v in steps.items()))
EOF
