"""Rule download_model: fetch one hub model alias into the Hugging Face cache."""

from snakejob import run

from biasdrift.jobs import download_model

if __name__ == "__main__":
    run(snakemake, download_model)  # noqa: F821 - injected by Snakemake's script: directive
