"""Rule align_d3m: D3M group alignment of every training example from one score matrix."""

from snakejob import run

from biasdrift.d3m.jobs import align_d3m

if __name__ == "__main__":
    run(snakemake, align_d3m)  # noqa: F821 - injected by Snakemake's script: directive
