"""Rule measure_specdec_acceptance: greedy speculative decoding of one view's templates
with one condition's (main, assistant) pair, draft length K and N new tokens."""

from biasdrift.runtime import choose_device, job_for
from biasdrift.specdec.decoding import DecodeConfig, measure_acceptance
from biasdrift.training import config_from_dict


def main(smk) -> None:
    runtime = smk.params.runtime
    with job_for(smk, seed=0, deterministic=runtime["deterministic"]) as record:
        record.update(
            measure_acceptance(
                pair=smk.params.pair,
                templates_path=smk.input.templates,
                view=smk.wildcards.view,
                cfg=config_from_dict(DecodeConfig, smk.params.decode, "studies.specdec.decode"),
                out_path=smk.output.decoded,
                device=choose_device(runtime["device"]),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
