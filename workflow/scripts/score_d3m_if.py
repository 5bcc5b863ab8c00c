"""Rule score_d3m_if: one influence-function score matrix (n_train, n_query) of a world."""

from snakejob import run

from biasdrift.d3m.jobs import score_d3m_if

if __name__ == "__main__":
    run(snakemake, score_d3m_if)  # noqa: F821 - injected by Snakemake's script: directive
