"""Rule summarize_specdec_disparity: group means with CIs, a − b at three levels,
difference-in-differences against the reference condition, spread, Holm."""

from biasdrift.runtime import job_for
from biasdrift.specdec.analysis import summarize_disparity
from biasdrift.specdec.stats import StatsConfig
from biasdrift.training import config_from_dict


def main(smk) -> None:
    settings = smk.params.settings
    with job_for(smk) as record:
        record.update(
            summarize_disparity(
                decoded=dict(smk.params.decoded),
                kl=dict(smk.params.kl),
                contrast=list(settings["contrast"]),
                reference=settings["reference"],
                cfg=config_from_dict(StatsConfig, settings["stats"], "studies.specdec.stats"),
                outputs=dict(smk.output.items()),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
