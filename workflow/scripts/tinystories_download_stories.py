"""Rule download_stories: the TinyStories tarball from the hub (token from HF_TOKEN only)."""

from snakejob import run

from biasdrift.tinystories.jobs import download_stories

if __name__ == "__main__":
    run(snakemake, download_stories)  # noqa: F821 - injected by Snakemake's script: directive
