"""Rule discover_circuit: EAP scores of every edge (dense table), top edges, the greedy circuit and
its faithfulness, for one model and one (bias, template, corruption, metric)."""

from snakejob import run

from biasdrift.circuits.jobs import discover_circuit

if __name__ == "__main__":
    run(snakemake, discover_circuit)  # noqa: F821 - injected by Snakemake's script: directive
