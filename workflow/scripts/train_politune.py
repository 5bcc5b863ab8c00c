"""Rule train_politune: LoRA DPO or SFT of one model on one side's pairs."""

from snakejob import run

from biasdrift.politune.jobs import train_politune

if __name__ == "__main__":
    run(snakemake, train_politune)  # noqa: F821 - injected by Snakemake's script: directive
