"""Rule download_model: fetch one hub model into the Hugging Face cache (needs internet)."""

from biasdrift.models import download_model
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk):
        download_model(smk.params.model, smk.output.marker)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
