"""Rule make_prompts: the clean/corrupted prompt pairs of one template and corruption."""

from snakejob import run

from biasdrift.circuits.jobs import make_prompts

if __name__ == "__main__":
    run(snakemake, make_prompts)  # noqa: F821 - injected by Snakemake's script: directive
