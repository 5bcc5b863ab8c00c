"""Rule evaluate_story_model: losses, feature rates, marker log-probability and probes of one model."""

from snakejob import run

from biasdrift.tinystories.jobs import evaluate_story_model

if __name__ == "__main__":
    run(snakemake, evaluate_story_model)  # noqa: F821 - injected by Snakemake's script: directive
