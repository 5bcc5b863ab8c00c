"""Rule plot_specdec_sampling: speculative sampling's measured acceptance vs 1 − TV."""

from snakejob import run

from biasdrift.specdec.jobs import plot_specdec_sampling

if __name__ == "__main__":
    run(snakemake, plot_specdec_sampling)  # noqa: F821 - injected by Snakemake's script: directive
