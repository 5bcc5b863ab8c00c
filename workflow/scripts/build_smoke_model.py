"""Rule build_smoke_model: one random-weight model with a real hub config (smoke tier)."""

from biasdrift.runtime import job_for
from biasdrift.smoke.fixtures import build_model_fixture


def main(smk) -> None:
    with job_for(smk, seed=0) as record:
        record.update(build_model_fixture(smk.wildcards.fixture, smk.output.model))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
