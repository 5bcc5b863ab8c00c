"""Rule score_specdec_toxicity: toxicity of the main and assistant completions per
condition, with Wilson intervals and paired McNemar tests against the reference."""

from snakejob import run

from biasdrift.specdec.jobs import score_specdec_toxicity

if __name__ == "__main__":
    run(snakemake, score_specdec_toxicity)  # noqa: F821 - injected by Snakemake's script: directive
