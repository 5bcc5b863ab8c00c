"""Rule synthesize_stories: the seeded synthetic corpus, packed like the hub tarball."""

from biasdrift.runtime import job_for
from biasdrift.tinystories.corpus import synthesize_tarball
from biasdrift.tinystories.synthetic import SyntheticParams
from biasdrift.training import config_from_dict


def main(smk) -> None:
    with job_for(smk) as record:
        params = config_from_dict(SyntheticParams, smk.params.synthetic, "studies.tinystories.corpus.synthetic")
        record.update(synthesize_tarball(params, smk.output.tarball))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
