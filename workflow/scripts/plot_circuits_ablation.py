"""Rule plot_circuits_ablation: ablation curves and EAP against exact patching."""

from snakejob import run

from biasdrift.circuits.jobs import plot_circuits_ablation

if __name__ == "__main__":
    run(snakemake, plot_circuits_ablation)  # noqa: F821 - injected by Snakemake's script: directive
