"""Rule plot_circuits_stability: overlap heatmap and layer distribution of one model's circuits."""

from snakejob import run

from biasdrift.circuits.jobs import plot_circuits_stability

if __name__ == "__main__":
    run(snakemake, plot_circuits_stability)  # noqa: F821 - injected by Snakemake's script: directive
