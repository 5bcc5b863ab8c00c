"""Rule plot_specdec_kl_curve: KL terms over fine-tuning."""

from snakejob import run

from biasdrift.specdec.jobs import plot_specdec_kl_curve

if __name__ == "__main__":
    run(snakemake, plot_specdec_kl_curve)  # noqa: F821 - injected by Snakemake's script: directive
