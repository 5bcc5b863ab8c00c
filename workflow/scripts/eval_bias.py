"""Rule eval_bias: top-k next tokens, labels and M1/M2/G1/G2 of every prompt for one model."""

from biasdrift.circuits.jobs import eval_bias, set_threads
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    runtime = smk.params.runtime
    with job_for(smk, seed=0, deterministic=runtime["deterministic"]) as record:
        set_threads(smk.threads)
        record.update(
            eval_bias(
                model_ref=smk.params.model,
                prompt_files=list(smk.input.prompts),
                label_params=smk.params.labels,
                batch_size=smk.params.batch_size,
                device=choose_device(runtime["device"]),
                dtype_name=smk.params.dtype,
                out_table=smk.output.table,
                out_summary=smk.output.summary,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
