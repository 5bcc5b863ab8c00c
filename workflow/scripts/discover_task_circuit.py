"""Rule discover_task_circuit: EAP on your own clean/corrupted prompt pairs (a TSV) with the
logit-difference metric; top edges, the greedy circuit and faithfulness against size."""

from biasdrift.circuits.jobs import set_threads
from biasdrift.circuits.tasks import discover_task_circuit
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    runtime, task = smk.params.runtime, smk.params.task
    with job_for(smk, seed=0, deterministic=runtime["deterministic"]) as record:
        set_threads(smk.threads)
        record.update(
            discover_task_circuit(
                model_ref=smk.params.model,
                task_tsv=smk.input.task,
                task=smk.wildcards.task,
                eap_params=task["eap"],
                sizes=list(task["sizes"]),
                device=choose_device(runtime["device"]),
                outputs={k: v for k, v in smk.output.items() if k != "manifest"},
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
