"""Rule sample_specdec_acceptance: speculative sampling (rejection sampling, temperature > 0)
of one view's templates with one condition's (main, assistant) pair, K and N."""

from biasdrift.runtime import choose_device, job_for
from biasdrift.specdec.sampling import SamplingConfig, sample_acceptance
from biasdrift.training import config_from_dict


def main(smk) -> None:
    runtime = smk.params.runtime
    with job_for(smk, seed=0, deterministic=runtime["deterministic"]) as record:
        record.update(
            sample_acceptance(
                pair=smk.params.pair,
                templates_path=smk.input.templates,
                view=smk.wildcards.view,
                cfg=config_from_dict(SamplingConfig, smk.params.sampling, "studies.specdec.sampling"),
                out_path=smk.output.sampled,
                device=choose_device(runtime["device"]),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
