"""Rule retrain_d3m_baseline: remove a k-free baseline's training examples (balance, heuristic), retrain, evaluate."""

from snakejob import run

from biasdrift.d3m.jobs import retrain_d3m_baseline

if __name__ == "__main__":
    run(snakemake, retrain_d3m_baseline)  # noqa: F821 - injected by Snakemake's script: directive
