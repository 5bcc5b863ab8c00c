"""Rule plot_d3m_sweep: the sweep's figure (every world, every method)."""

from snakejob import run

from biasdrift.d3m.jobs import plot_d3m_sweep

if __name__ == "__main__":
    run(snakemake, plot_d3m_sweep)  # noqa: F821 - injected by Snakemake's script: directive
