"""Rule plot_specdec_disparity: share by category, per-identity distributions, the
disparity forest plot and KL vs share for one view, K and N."""

from pathlib import Path

from biasdrift.runtime import job_for
from biasdrift.specdec.analysis import plot_disparity


def main(smk) -> None:
    settings, wc = smk.params.settings, smk.wildcards
    with job_for(smk) as record:
        record.update(
            plot_disparity(
                stats_dir=Path(smk.input.summary).parent,
                contrast=list(settings["contrast"]),
                reference=settings["reference"],
                title=f"view {wc.view}, K={wc.k}, N={wc.n}",
                outputs=dict(smk.output.items()),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
