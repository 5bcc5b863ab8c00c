"""Rule pretrain_lm: build one tiny model alias and pretrain it from scratch."""

from snakejob import run

from biasdrift.jobs import pretrain_lm

if __name__ == "__main__":
    run(snakemake, pretrain_lm)  # noqa: F821 - injected by Snakemake's script: directive
