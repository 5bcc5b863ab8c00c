"""Rule retrain_d3m: remove the k lowest-aligned (or k random) training examples, retrain, evaluate."""

from snakejob import run

from biasdrift.d3m.jobs import retrain_d3m

if __name__ == "__main__":
    run(snakemake, retrain_d3m)  # noqa: F821 - injected by Snakemake's script: directive
