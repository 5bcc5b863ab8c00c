"""Rule prepare_specdec_templates: HONEST-format templates with ids, prompts and views."""

from snakejob import run

from biasdrift.specdec.jobs import prepare_specdec_templates

if __name__ == "__main__":
    run(snakemake, prepare_specdec_templates)  # noqa: F821 - injected by Snakemake's script: directive
