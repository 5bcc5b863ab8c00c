"""Rule aggregate_d3m: every run of one world, summarised over seeds, k chosen on validation."""

from snakejob import run

from biasdrift.d3m.jobs import aggregate_d3m

if __name__ == "__main__":
    run(snakemake, aggregate_d3m)  # noqa: F821 - injected by Snakemake's script: directive
