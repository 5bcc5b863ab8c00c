"""Rule finetune_circuits: fine-tune one base model (positive-bias or unrelated text)."""

from snakejob import run

from biasdrift.circuits.jobs import finetune_circuits

if __name__ == "__main__":
    run(snakemake, finetune_circuits)  # noqa: F821 - injected by Snakemake's script: directive
