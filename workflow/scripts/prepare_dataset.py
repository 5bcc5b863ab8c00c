"""Rule prepare_dataset: materialise one dataset alias (hub, local file or generated) as parquet."""

from snakejob import run

from biasdrift.jobs import prepare_dataset

if __name__ == "__main__":
    run(snakemake, prepare_dataset)  # noqa: F821 - injected by Snakemake's script: directive
