"""Rule plot_specdec_disparity: share by category, per-identity distributions, the
disparity forest plot and KL vs share for one view, K and N."""

from snakejob import run

from biasdrift.specdec.jobs import plot_specdec_disparity

if __name__ == "__main__":
    run(snakemake, plot_specdec_disparity)  # noqa: F821 - injected by Snakemake's script: directive
