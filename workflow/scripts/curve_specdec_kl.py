"""Rule curve_specdec_kl: the KL terms over fine-tuning, from both roles' milestones."""

from snakejob import run

from biasdrift.specdec.jobs import curve_specdec_kl

if __name__ == "__main__":
    run(snakemake, curve_specdec_kl)  # noqa: F821 - injected by Snakemake's script: directive
