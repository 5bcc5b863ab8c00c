"""Rule finetune_d3m_base: fine-tune the base classifier of one world with one seed."""

from snakejob import run

from biasdrift.d3m.jobs import finetune_d3m_base

if __name__ == "__main__":
    run(snakemake, finetune_d3m_base)  # noqa: F821 - injected by Snakemake's script: directive
