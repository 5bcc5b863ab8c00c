"""Rule pretokenize: one dataset variant as uint16 shards of BOS-delimited examples."""

from snakejob import run

from biasdrift.tinystories.jobs import pretokenize

if __name__ == "__main__":
    run(snakemake, pretokenize)  # noqa: F821 - injected by Snakemake's script: directive
