"""Rule compare_circuits: top edges of a fine-tuned model against its base model."""

from snakejob import run

from biasdrift.circuits.jobs import compare_circuits

if __name__ == "__main__":
    run(snakemake, compare_circuits)  # noqa: F821 - injected by Snakemake's script: directive
