"""Rule judge_answers: score every free-text answer of one model's states with the judge."""

from snakejob import run

from biasdrift.politune.jobs import judge_answers

if __name__ == "__main__":
    run(snakemake, judge_answers)  # noqa: F821 - injected by Snakemake's script: directive
