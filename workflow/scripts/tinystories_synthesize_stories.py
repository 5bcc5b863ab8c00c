"""Rule synthesize_stories: the seeded synthetic corpus, packed like the hub tarball."""

from snakejob import run

from biasdrift.tinystories.jobs import synthesize_stories

if __name__ == "__main__":
    run(snakemake, synthesize_stories)  # noqa: F821 - injected by Snakemake's script: directive
