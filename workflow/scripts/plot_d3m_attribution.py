"""Rule plot_d3m_attribution: score heatmaps, alignment by cell, most harmful examples, IF vs TRAK."""

from pathlib import Path

from biasdrift.d3m.plots import attribution_figures
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(
            attribution_figures(
                smk.params.methods,
                smk.input.data,
                list(smk.input.scores),
                list(smk.input.uids),
                list(smk.input.align),
                smk.params.query_split,
                smk.params.top_n,
                Path(smk.output.heatmap).parent,
                pair=smk.params.pair,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
