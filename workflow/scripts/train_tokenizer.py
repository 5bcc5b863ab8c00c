"""Rule train_tokenizer: train one tokenizer alias on its corpus."""

from snakejob import run

from biasdrift.jobs import train_tokenizer

if __name__ == "__main__":
    run(snakemake, train_tokenizer)  # noqa: F821 - injected by Snakemake's script: directive
