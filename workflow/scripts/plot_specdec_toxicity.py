"""Rule plot_specdec_toxicity: toxic rates with Wilson intervals per condition."""

from snakejob import run

from biasdrift.specdec.jobs import plot_specdec_toxicity

if __name__ == "__main__":
    run(snakemake, plot_specdec_toxicity)  # noqa: F821 - injected by Snakemake's script: directive
