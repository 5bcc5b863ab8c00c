"""Rule ablate_circuit: the metric with the top-n edges removed (from the saved scores), and
optionally exact single-edge patching of every edge."""

from snakejob import run

from biasdrift.circuits.jobs import ablate_circuit

if __name__ == "__main__":
    run(snakemake, ablate_circuit)  # noqa: F821 - injected by Snakemake's script: directive
