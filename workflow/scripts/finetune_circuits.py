"""Rule finetune_circuits: fine-tune one base model (positive-bias or unrelated text)."""

from biasdrift.circuits.jobs import finetune, set_threads
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    spec, runtime = smk.params.spec, smk.params.runtime
    with job_for(smk, seed=spec["seed"], deterministic=runtime["deterministic"]) as record:
        set_threads(smk.threads)
        metrics = finetune(
            model_ref=smk.params.model,
            spec=spec,
            groups=smk.params.groups,
            underscores=smk.params.underscores,
            data_path=smk.input.data[0] if spec["kind"] == "unrelated" else None,
            out_dir=smk.output.model,
            metrics_path=smk.output.metrics,
            scratch_dir=smk.params.scratch,
            device=choose_device(runtime["device"]),
            runtime_seed_info={"ft": smk.wildcards.ft},
        )
        record.update({k: metrics[k] for k in ("global_step", "train_loss", "final_eval", "resumed_from_step")})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
