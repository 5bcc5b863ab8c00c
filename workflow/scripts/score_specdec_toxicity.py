"""Rule score_specdec_toxicity: toxicity of the main and assistant completions per
condition, with Wilson intervals and paired McNemar tests against the reference."""

from biasdrift.runtime import choose_device, job_for
from biasdrift.specdec.toxicity import ToxicityConfig, score_toxicity
from biasdrift.training import config_from_dict


def main(smk) -> None:
    settings, runtime = smk.params.settings, smk.params.runtime
    with job_for(smk, seed=0, deterministic=runtime["deterministic"]) as record:
        record.update(
            score_toxicity(
                decode_paths=dict(smk.params.decoded),
                pairs=dict(smk.params.pairs),
                cfg=config_from_dict(ToxicityConfig, settings["toxicity"], "studies.specdec.toxicity"),
                classifier_ref=settings["classifier_ref"],
                reference=settings["reference"],
                n=int(smk.wildcards.n),
                out_scores=smk.output.scores,
                out_summary=smk.output.summary,
                out_transitions=smk.output.transitions,
                device=choose_device(runtime["device"]),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
