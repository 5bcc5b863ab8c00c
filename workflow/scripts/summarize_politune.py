"""Rule summarize_politune: scores with intervals, shifts against the base, checkpoint choice."""

from snakejob import run

from biasdrift.politune.jobs import summarize_politune

if __name__ == "__main__":
    run(snakemake, summarize_politune)  # noqa: F821 - injected by Snakemake's script: directive
