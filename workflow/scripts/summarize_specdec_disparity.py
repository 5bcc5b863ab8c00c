"""Rule summarize_specdec_disparity: group means with CIs, a − b at three levels,
difference-in-differences against the reference condition, spread, Holm."""

from snakejob import run

from biasdrift.specdec.jobs import summarize_specdec_disparity

if __name__ == "__main__":
    run(snakemake, summarize_specdec_disparity)  # noqa: F821 - injected by Snakemake's script: directive
