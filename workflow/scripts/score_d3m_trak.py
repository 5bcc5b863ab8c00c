"""Rule score_d3m_trak: one TRAK score matrix (n_train, n_query) of a world."""

from snakejob import run

from biasdrift.d3m.jobs import score_d3m_trak

if __name__ == "__main__":
    run(snakemake, score_d3m_trak)  # noqa: F821 - injected by Snakemake's script: directive
