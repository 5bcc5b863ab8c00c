"""Rule plot_matrix (the cross-study probe matrix)."""

from snakejob import run

from biasdrift.matrix.jobs import plot_matrix

if __name__ == "__main__":
    run(snakemake, plot_matrix)  # noqa: F821 - injected by Snakemake's script: directive
