"""Rule discover_circuit: EAP scores of every edge (dense table), top edges, the greedy
circuit and its faithfulness, for one model and one (bias, template, corruption, metric)."""

from biasdrift.circuits.jobs import discover_circuit, set_threads
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    wc, runtime = smk.wildcards, smk.params.runtime
    with job_for(smk, seed=0, deterministic=runtime["deterministic"]) as record:
        set_threads(smk.threads)
        record.update(
            discover_circuit(
                model_ref=smk.params.model,
                prompts_csv=smk.input.prompts,
                bias=wc.bias,
                template=wc.template,
                corruption=wc.corruption,
                metric_name=wc.metric,
                eap_params=smk.params.eap,
                label_params=smk.params.labels,
                device=choose_device(runtime["device"]),
                outputs={k: v for k, v in smk.output.items() if k != "manifest"},
                title_model=smk.params.model["alias"],
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
