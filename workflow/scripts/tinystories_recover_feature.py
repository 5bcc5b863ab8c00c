"""Rule recover_feature: fine-tune a deleted (or the control) model on data with the feature."""

from snakejob import run

from biasdrift.tinystories.jobs import recover_feature

if __name__ == "__main__":
    run(snakemake, recover_feature)  # noqa: F821 - injected by Snakemake's script: directive
