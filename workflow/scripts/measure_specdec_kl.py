"""Rule measure_specdec_kl: divergences of main vs assistant at every template prompt."""

from snakejob import run

from biasdrift.specdec.jobs import measure_specdec_kl

if __name__ == "__main__":
    run(snakemake, measure_specdec_kl)  # noqa: F821 - injected by Snakemake's script: directive
