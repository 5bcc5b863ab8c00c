"""Rule prepare_pairs: one side's preference pairs, cleaned and split (or a mix of sides)."""

from snakejob import run

from biasdrift.politune.jobs import prepare_pairs

if __name__ == "__main__":
    run(snakemake, prepare_pairs)  # noqa: F821 - injected by Snakemake's script: directive
