"""Rule analyze_stability: top-edge overlap across the runs of one model, grammatical and bias-type
stability, and the layer distribution of the top edges."""

from snakejob import run

from biasdrift.circuits.jobs import analyze_stability

if __name__ == "__main__":
    run(snakemake, analyze_stability)  # noqa: F821 - injected by Snakemake's script: directive
