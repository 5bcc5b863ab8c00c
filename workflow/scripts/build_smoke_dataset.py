"""Rule build_smoke_dataset: one local file in a hub dataset's format (smoke tier)."""

from biasdrift.runtime import job_for
from biasdrift.smoke.fixtures import build_dataset_fixture


def main(smk) -> None:
    with job_for(smk, seed=0) as record:
        record.update(build_dataset_fixture(smk.wildcards.fixture, smk.output.data))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
