"""Rule plot_tinystories: recovery curves, probe accuracy by layer, the deletion grid."""

from snakejob import run

from biasdrift.tinystories.jobs import plot_tinystories

if __name__ == "__main__":
    run(snakemake, plot_tinystories)  # noqa: F821 - injected by Snakemake's script: directive
