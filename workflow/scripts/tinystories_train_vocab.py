"""Rule train_vocab: the SentencePiece BPE vocabulary (non-interactive)."""

from snakejob import run

from biasdrift.tinystories.jobs import train_vocab

if __name__ == "__main__":
    run(snakemake, train_vocab)  # noqa: F821 - injected by Snakemake's script: directive
