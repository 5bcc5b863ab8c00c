"""Rule align_d3m: D3M group alignment of every training example from one score matrix."""

from biasdrift.d3m.scoring import align_world
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(
            align_world(
                data_path=smk.input.data,
                scores_path=smk.input.scores,
                uids_path=smk.input.uids,
                preds_path=smk.input.preds,
                query_split=smk.params.query_split,
                grouping=smk.params.grouping,
                align_path=smk.output.align,
                groups_path=smk.output.groups,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
