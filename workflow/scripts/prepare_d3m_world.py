"""Rule prepare_d3m_world: one d3m world (uid, text, label, group, cell, split) with per-cell counts."""

from snakejob import run

from biasdrift.d3m.jobs import prepare_d3m_world

if __name__ == "__main__":
    run(snakemake, prepare_d3m_world)  # noqa: F821 - injected by Snakemake's script: directive
