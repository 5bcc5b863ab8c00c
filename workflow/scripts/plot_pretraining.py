"""Rule plot_pretraining: loss curves of every built model."""

from snakejob import run

from biasdrift.jobs import plot_pretraining

if __name__ == "__main__":
    run(snakemake, plot_pretraining)  # noqa: F821 - injected by Snakemake's script: directive
