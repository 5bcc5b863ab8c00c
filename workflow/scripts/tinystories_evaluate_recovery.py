"""Rule evaluate_recovery: losses, feature rate and marker log-probability at every recovery checkpoint."""

from snakejob import run

from biasdrift.tinystories.jobs import evaluate_recovery

if __name__ == "__main__":
    run(snakemake, evaluate_recovery)  # noqa: F821 - injected by Snakemake's script: directive
