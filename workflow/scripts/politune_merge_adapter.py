"""Rule merge_adapter: a run's final adapter merged into its base (checked against the logits)."""

from snakejob import run

from biasdrift.politune.jobs import merge_adapter

if __name__ == "__main__":
    run(snakemake, merge_adapter)  # noqa: F821 - injected by Snakemake's script: directive
