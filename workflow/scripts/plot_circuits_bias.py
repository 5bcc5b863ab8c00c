"""Rule plot_circuits_bias: bias by base-model group split, before and after fine-tuning."""

from snakejob import run

from biasdrift.circuits.jobs import plot_circuits_bias

if __name__ == "__main__":
    run(snakemake, plot_circuits_bias)  # noqa: F821 - injected by Snakemake's script: directive
