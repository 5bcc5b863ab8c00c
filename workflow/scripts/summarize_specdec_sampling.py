"""Rule summarize_specdec_sampling: measured acceptance of speculative sampling per
condition and category against its expectation 1 − TV, and the contrast's difference."""

from snakejob import run

from biasdrift.specdec.jobs import summarize_specdec_sampling

if __name__ == "__main__":
    run(snakemake, summarize_specdec_sampling)  # noqa: F821 - injected by Snakemake's script: directive
