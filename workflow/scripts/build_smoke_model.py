"""Rule build_smoke_model: one smoke-tier model fixture (random weights, the hub model's config)."""

from snakejob import run

from biasdrift.smoke.jobs import build_smoke_model

if __name__ == "__main__":
    run(snakemake, build_smoke_model)  # noqa: F821 - injected by Snakemake's script: directive
