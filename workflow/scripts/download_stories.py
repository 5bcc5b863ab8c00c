"""Rule download_stories: the TinyStories tarball from the hub (token from HF_TOKEN only)."""

from biasdrift.runtime import job_for
from biasdrift.tinystories.corpus import download_tarball


def main(smk) -> None:
    hub = smk.params.hub
    with job_for(smk) as record:
        record.update(download_tarball(hub["hf_id"], hub["revision"], hub["filename"], smk.output.tarball))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
