#!/usr/bin/env bash
# The GPU check: on a CUDA machine, in under 8 minutes, run
#   1. every @pytest.mark.gpu test (bf16 + checkpointing DPO/SFT, QLoRA, TRAK's CudaProjector),
#   2. the smoke tier (config/smoke/<study>.yaml) with the GPU settings of bench/gpu/<study>.yaml
#      merged over it: CUDA, bf16 autocast, the CUDA projector where fast_jl is installed,
# and write what it saw to a folder: gpu_check.log, gpu_tests.xml (JUnit), smoke/summary.json,
# environment.txt and summary.txt (the table the README quotes).
#
#   bash bench/gpu_check.sh [OUTDIR]        # OUTDIR default: $OUT, else bench/results/gpu_check
#
# The Python is $PYTHON, else .venv/bin/python when it has CUDA torch, else python3. On a
# machine without the workflow's packages and without a registry, first run
# `bash bench/gpu_wheels.sh` where pip works: this script installs .whl/ into /tmp/site.
# GPU_CHECK_PLUMBING=1 runs the same steps on a CPU machine (the gpu tests skip, the smoke
# runs are dry runs): it checks the script, not the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-bench/results/gpu_check}}
mkdir -p "$OUTDIR"
exec > >(tee "$OUTDIR/gpu_check.log") 2>&1
started=$(date +%s)
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
unset HF_TOKEN

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch,sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    PYTHON=.venv/bin/python
  else
    PYTHON=python3
  fi
fi
if ! "$PYTHON" -c 'import snakemake, trl, trak' 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  echo "== installing carried wheels (.whl/) into /tmp/site"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/* \
    || { echo "gpu_check: installing .whl/ failed"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PATH=/tmp/site/bin:$PATH

plumbing=${GPU_CHECK_PLUMBING:-0}
if ! "$PYTHON" -c 'import torch,sys; sys.exit(not torch.cuda.is_available())'; then
  if [ "$plumbing" != 1 ]; then
    echo "gpu_check: no CUDA device visible to $PYTHON (GPU_CHECK_PLUMBING=1 checks the script on a CPU)"
    exit 2
  fi
  echo "gpu_check: no CUDA device: plumbing run (gpu tests skip, smoke runs are dry runs)"
fi

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$PYTHON" - <<'PY'
import importlib, sys
import torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
      "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
for name in ("transformers", "trl", "peft", "snakemake", "trak", "kronfluence", "bitsandbytes", "fast_jl"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "installed"))
    except Exception as err:  # noqa: BLE001 - an environment report
        print(name, "MISSING:", type(err).__name__, str(err)[:80])
PY
} | tee "$OUTDIR/environment.txt"

status=0
echo "== 1. pytest -m gpu"
timeout 240 "$PYTHON" -m pytest -m gpu -p no:cacheprovider -q -rs --junitxml="$OUTDIR/gpu_tests.xml" tests
tests_rc=$?
[ $tests_rc -eq 0 ] || status=1

echo "== 2. smoke tier with bench/gpu/<study>.yaml (CUDA, bf16)"
smoke_args=(--workdir /tmp/biasdrift-smoke --cores "$(nproc)" --overlay-dir bench/gpu)
[ "$plumbing" = 1 ] && smoke_args+=(--dry-run)
PYTHONPATH=workflow/scripts${PYTHONPATH:+:$PYTHONPATH} timeout 330 "$PYTHON" -m biasdrift.smoke.run "${smoke_args[@]}" \
  ${GPU_CHECK_STUDIES:-specdec circuits d3m politune tinystories}
smoke_rc=$?
[ $smoke_rc -eq 0 ] || status=1
mkdir -p "$OUTDIR/smoke"
cp /tmp/biasdrift-smoke/summary.json "$OUTDIR/smoke/" 2>/dev/null || true
for f in /tmp/biasdrift-smoke/*.log; do [ -e "$f" ] && tail -n 200 "$f" > "$OUTDIR/smoke/$(basename "$f")"; done

{
  echo "gpu_check: $(head -n1 "$OUTDIR/environment.txt")"
  echo "pytest -m gpu: rc $tests_rc ($(grep -o 'tests="[0-9]*"' "$OUTDIR/gpu_tests.xml" 2>/dev/null), $(grep -o 'skipped="[0-9]*"' "$OUTDIR/gpu_tests.xml" 2>/dev/null), $(grep -o 'failures="[0-9]*"' "$OUTDIR/gpu_tests.xml" 2>/dev/null))"
  echo "smoke tier: rc $smoke_rc"
  "$PYTHON" - "$OUTDIR/smoke/summary.json" <<'PY' 2>/dev/null || echo "  (no smoke summary)"
import json, sys
for r in json.load(open(sys.argv[1]))["studies"]:
    print(f"  {r['study']:<12} rc {r['returncode']} {r['wall_s']:>6.0f} s {r['jobs'] or '-'} jobs")
PY
  echo "wall: $(( $(date +%s) - started )) s"
} | tee "$OUTDIR/summary.txt"
exit $status
