"""Rule ablate_circuit: the metric with the top-n edges removed (from the saved scores),
and optionally exact single-edge patching of every edge."""

from biasdrift.circuits.jobs import ablate_circuit, set_threads
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    runtime, ablation = smk.params.runtime, smk.params.ablation
    with job_for(smk, seed=0, deterministic=runtime["deterministic"]) as record:
        set_threads(smk.threads)
        record.update(
            ablate_circuit(
                model_ref=smk.params.model,
                scores_path=smk.input.scores,
                prompts_csv=smk.input.prompts,
                eap_params=smk.params.eap,
                label_params=smk.params.labels,
                levels=ablation["levels"],
                exact_check=ablation["exact_check"],
                exact_check_max_edges=ablation["exact_check_max_edges"],
                device=choose_device(runtime["device"]),
                outputs={k: v for k, v in smk.output.items() if k != "manifest"},
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
