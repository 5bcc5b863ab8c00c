#!/usr/bin/env bash
# Wheels that bench/gpu_check.sh needs on a GPU machine whose Python (3.12) has torch,
# numpy, pandas, pyarrow, accelerate, ... but not the workflow's own packages, and that
# cannot reach a registry. Run HERE (a machine with pip and PyPI), in the repo root:
#   bash bench/gpu_wheels.sh            # -> .whl/ (git-ignored via .git/info/exclude)
# Versions come from constraints.txt (the CPU lock), so the GPU run uses the same
# transformers / trl / peft / snakemake as the tests. --no-deps: every package needed
# is listed; torch and the CUDA libraries are the machine's own.
# Not carried: bitsandbytes (its wheel alone is larger than what a device call may
# carry) and fast_jl (traker's CUDA projector: its source build needs CUDA, so it cannot
# even be downloaded as an sdist here). gpu_check.sh runs QLoRA and the CudaProjector
# where they are installed and records them as skipped, with the reason, where not.
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=${PY_VERSION:-3.12}
PACKAGES=(
  transformers tokenizers peft trl datasets dill multiprocess xxhash huggingface-hub
  traker einconv opt-einsum
  snakemake snakemake-interface-common snakemake-interface-executor-plugins
  snakemake-interface-logger-plugins snakemake-interface-report-plugins
  snakemake-interface-scheduler-plugins snakemake-interface-storage-plugins
  snakemake-executor-plugin-slurm snakemake-executor-plugin-slurm-jobstep
  yte dpath jsonschema jsonschema-specifications referencing rpds-py pulp throttler
  connection-pool conda-inject configargparse argparse-dataclass immutables smart-open
  gitpython gitdb smmap humanfriendly docutils nbformat fastjsonschema jupyter-core
  traitlets platformdirs tabulate tenacity pydantic pydantic-core annotated-types
  typing-inspection sqlmodel sqlalchemy greenlet truststore tzdata
)
pins=()
for name in "${PACKAGES[@]}"; do
  pin=$(grep -i -E "^${name//-/[-_]}==" constraints.txt || true)
  [ -n "$pin" ] || { echo "gpu_wheels: $name is not pinned in constraints.txt" >&2; exit 1; }
  pins+=("$pin")
done
# kronfluence is installed with --no-deps by the Makefile, which holds its pin
pins+=("$(grep -o -m1 'kronfluence==[0-9.]*' Makefile)")
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl .whl-src
for pin in "${pins[@]}"; do
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl "$pin" 2>/dev/null \
  || python3 -m pip download --quiet --no-deps --no-binary=:all: -d .whl "$pin" 2>/dev/null \
  || { echo "gpu_wheels: cannot download $pin" >&2; exit 1; }
done
du -sh .whl
