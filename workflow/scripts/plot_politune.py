"""Rule plot_politune: axis scores, score trajectories, per-statement scores, held-out preferences."""

from snakejob import run

from biasdrift.politune.jobs import plot_politune

if __name__ == "__main__":
    run(snakemake, plot_politune)  # noqa: F821 - injected by Snakemake's script: directive
