"""Rule plot_politune_judge: the judge's mean score of free-text answers against step."""

from snakejob import run

from biasdrift.politune.jobs import plot_politune_judge

if __name__ == "__main__":
    run(snakemake, plot_politune_judge)  # noqa: F821 - injected by Snakemake's script: directive
