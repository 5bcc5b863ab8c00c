"""Rule delete_feature: fine-tune base all on a deletion protocol's dataset."""

from snakejob import run

from biasdrift.tinystories.jobs import delete_feature

if __name__ == "__main__":
    run(snakemake, delete_feature)  # noqa: F821 - injected by Snakemake's script: directive
