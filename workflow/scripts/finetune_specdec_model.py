"""Rule finetune_specdec_model: fine-tune the main model or the assistant on the news
corpus, storing the template distributions at milestones."""

from snakejob import run

from biasdrift.specdec.jobs import finetune_specdec_model

if __name__ == "__main__":
    run(snakemake, finetune_specdec_model)  # noqa: F821 - injected by Snakemake's script: directive
