"""Rule split_demographic: the base model's demographic group split (pos/neg) of one template."""

from snakejob import run

from biasdrift.circuits.jobs import split_demographic

if __name__ == "__main__":
    run(snakemake, split_demographic)  # noqa: F821 - injected by Snakemake's script: directive
