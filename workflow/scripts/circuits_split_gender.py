"""Rule split_gender: the base model's gender group split (mb/fb) of one template."""

from snakejob import run

from biasdrift.circuits.jobs import split_gender

if __name__ == "__main__":
    run(snakemake, split_gender)  # noqa: F821 - injected by Snakemake's script: directive
