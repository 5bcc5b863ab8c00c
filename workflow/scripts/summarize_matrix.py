"""Rule summarize_matrix (the cross-study probe matrix)."""

from snakejob import run

from biasdrift.matrix.jobs import summarize_matrix

if __name__ == "__main__":
    run(snakemake, summarize_matrix)  # noqa: F821 - injected by Snakemake's script: directive
