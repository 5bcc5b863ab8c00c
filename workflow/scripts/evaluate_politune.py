"""Rule evaluate_politune: statement probe, free-text answers and held-out pairs of one model state."""

from snakejob import run

from biasdrift.politune.jobs import evaluate_politune

if __name__ == "__main__":
    run(snakemake, evaluate_politune)  # noqa: F821 - injected by Snakemake's script: directive
