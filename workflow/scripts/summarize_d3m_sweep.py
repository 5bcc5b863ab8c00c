"""Rule summarize_d3m_sweep: every world's D3M result against random removal and balancing."""

from snakejob import run

from biasdrift.d3m.jobs import summarize_d3m_sweep

if __name__ == "__main__":
    run(snakemake, summarize_d3m_sweep)  # noqa: F821 - injected by Snakemake's script: directive
