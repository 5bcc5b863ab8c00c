"""Rule plot_circuits_comparisons: top-edge overlap of every fine-tuned model with its base."""

from snakejob import run

from biasdrift.circuits.jobs import plot_circuits_comparisons

if __name__ == "__main__":
    run(snakemake, plot_circuits_comparisons)  # noqa: F821 - injected by Snakemake's script: directive
