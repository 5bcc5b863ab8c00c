"""Rule plot_d3m_counterfactual: a test metric against k per method, with reference lines."""

from snakejob import run

from biasdrift.d3m.jobs import plot_d3m_counterfactual

if __name__ == "__main__":
    run(snakemake, plot_d3m_counterfactual)  # noqa: F821 - injected by Snakemake's script: directive
