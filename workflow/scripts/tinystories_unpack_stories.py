"""Rule unpack_stories: the tarball's JSON shards, checked, with a manifest of counts."""

from snakejob import run

from biasdrift.tinystories.jobs import unpack_stories

if __name__ == "__main__":
    run(snakemake, unpack_stories)  # noqa: F821 - injected by Snakemake's script: directive
