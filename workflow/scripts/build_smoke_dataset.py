"""Rule build_smoke_dataset: one smoke-tier dataset fixture (a file in the hub dataset's format)."""

from snakejob import run

from biasdrift.smoke.jobs import build_smoke_dataset

if __name__ == "__main__":
    run(snakemake, build_smoke_dataset)  # noqa: F821 - injected by Snakemake's script: directive
