"""Rule score_matrix_cell (the cross-study probe matrix)."""

from snakejob import run

from biasdrift.matrix.jobs import score_matrix_cell

if __name__ == "__main__":
    run(snakemake, score_matrix_cell)  # noqa: F821 - injected by Snakemake's script: directive
