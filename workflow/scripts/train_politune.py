"""Rule train_politune: LoRA DPO or SFT of one model on one side's pairs."""

from biasdrift.politune.train import train_from_params
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    params, runtime = smk.params.train, smk.params.runtime
    with job_for(smk, seed=params["seed"], deterministic=runtime["deterministic"]) as record:
        record.update(
            train_from_params(
                params,
                ref=smk.params.model,
                pairs_path=smk.input.pairs,
                out_dir=smk.output.adapters,
                metrics_path=smk.output.metrics,
                scratch_dir=smk.params.scratch,
                device=choose_device(runtime["device"]),
                where=f"train_politune {smk.wildcards.model}/{smk.wildcards.side}/{smk.wildcards.method}",
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
