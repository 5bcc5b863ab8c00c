"""Rule plot_d3m_attribution: score heatmaps, alignment by cell, most harmful examples, IF vs TRAK."""

from snakejob import run

from biasdrift.d3m.jobs import plot_d3m_attribution

if __name__ == "__main__":
    run(snakemake, plot_d3m_attribution)  # noqa: F821 - injected by Snakemake's script: directive
