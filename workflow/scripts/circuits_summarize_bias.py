"""Rule summarize_bias: bias per group class for every model and fine-tune, with bootstrap intervals
and the change against the base model."""

from snakejob import run

from biasdrift.circuits.jobs import summarize_bias

if __name__ == "__main__":
    run(snakemake, summarize_bias)  # noqa: F821 - injected by Snakemake's script: directive
