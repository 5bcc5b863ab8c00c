"""Rule prepare_dataset: materialise one dataset alias (hub, local file or generated) as parquet."""

from biasdrift.data import prepare_dataset
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(prepare_dataset(smk.params.dataset, smk.output.data))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
