"""Rule eval_bias: top-k next tokens, labels and M1/M2/G1/G2 of every prompt for one model."""

from snakejob import run

from biasdrift.circuits.jobs import eval_bias

if __name__ == "__main__":
    run(snakemake, eval_bias)  # noqa: F821 - injected by Snakemake's script: directive
