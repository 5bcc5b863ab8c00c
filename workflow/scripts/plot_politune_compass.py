"""Rule plot_politune_compass: Political Compass coordinates of the base and each run's reported checkpoint."""

from snakejob import run

from biasdrift.politune.jobs import plot_politune_compass

if __name__ == "__main__":
    run(snakemake, plot_politune_compass)  # noqa: F821 - injected by Snakemake's script: directive
