"""Rule pretrain_story_model: a story model from scratch (base all or control)."""

from snakejob import run

from biasdrift.tinystories.jobs import pretrain_story_model

if __name__ == "__main__":
    run(snakemake, pretrain_story_model)  # noqa: F821 - injected by Snakemake's script: directive
