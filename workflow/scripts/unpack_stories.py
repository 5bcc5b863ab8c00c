"""Rule unpack_stories: the tarball's JSON shards, checked, with a manifest of counts."""

from biasdrift.runtime import job_for
from biasdrift.tinystories.corpus import unpack


def main(smk) -> None:
    with job_for(smk) as record:
        manifest = unpack(smk.input.tarball, smk.output.shards, smk.output.counts)
        record.update({k: manifest[k] for k in ("n_shards", "records", "features")})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
