"""Rule discover_task_circuit: EAP on your own clean/corrupted prompt pairs (a TSV) with the logit-
difference metric; top edges, the greedy circuit and faithfulness against size."""

from snakejob import run

from biasdrift.circuits.jobs import discover_task_circuit

if __name__ == "__main__":
    run(snakemake, discover_task_circuit)  # noqa: F821 - injected by Snakemake's script: directive
