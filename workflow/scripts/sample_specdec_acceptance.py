"""Rule sample_specdec_acceptance: speculative sampling (rejection sampling, temperature > 0)
of one view's templates with one condition's (main, assistant) pair, K and N."""

from snakejob import run

from biasdrift.specdec.jobs import sample_specdec_acceptance

if __name__ == "__main__":
    run(snakemake, sample_specdec_acceptance)  # noqa: F821 - injected by Snakemake's script: directive
