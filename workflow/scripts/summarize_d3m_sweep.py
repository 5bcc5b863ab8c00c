"""Rule summarize_d3m_sweep: every world's D3M result against random removal and balancing."""

from biasdrift.d3m.sweep import summarize_sweep
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        settings = smk.params.sweep
        worlds = dict(zip(settings["worlds"], zip(smk.input.selections, smk.input.longs, strict=True), strict=True))
        aligns = dict(zip(map(tuple, settings["aligns"]), smk.input.aligns, strict=True))
        record.update(
            summarize_sweep(
                worlds=worlds,
                aligns=aligns,
                majority_cells=settings["majority_cells"],
                descriptions=settings["descriptions"],
                level=settings["level"],
                csv_path=smk.output.csv,
                json_path=smk.output.json,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
