"""Rule measure_specdec_kl: divergences of main vs assistant at every template prompt."""

from biasdrift.runtime import choose_device, job_for
from biasdrift.specdec.kl import measure_kl


def main(smk) -> None:
    runtime = smk.params.runtime
    with job_for(smk, seed=0, deterministic=runtime["deterministic"]) as record:
        record.update(
            measure_kl(
                pair=smk.params.pair,
                templates_path=smk.input.templates,
                out_path=smk.output.kl,
                device=choose_device(runtime["device"]),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
