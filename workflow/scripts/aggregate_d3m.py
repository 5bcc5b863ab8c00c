"""Rule aggregate_d3m: every run of one world, summarised over seeds, k chosen on validation."""

from biasdrift.d3m.aggregate import aggregate
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(
            aggregate(
                list(smk.input.runs),
                smk.output.long,
                smk.output.summary,
                smk.output.selection,
                level=smk.params.metrics["level"],
                select_metric=smk.params.metrics["select_metric"],
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
