"""Rule summarize_tinystories: results, recovery and probe tables, marker-vs-judge agreement, the checks."""

from snakejob import run

from biasdrift.tinystories.jobs import summarize_tinystories

if __name__ == "__main__":
    run(snakemake, summarize_tinystories)  # noqa: F821 - injected by Snakemake's script: directive
