"""Rule measure_specdec_acceptance: greedy speculative decoding of one view's templates
with one condition's (main, assistant) pair, draft length K and N new tokens."""

from snakejob import run

from biasdrift.specdec.jobs import measure_specdec_acceptance

if __name__ == "__main__":
    run(snakemake, measure_specdec_acceptance)  # noqa: F821 - injected by Snakemake's script: directive
