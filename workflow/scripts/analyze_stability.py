"""Rule analyze_stability: top-edge overlap across the runs of one model, grammatical and
bias-type stability, and the layer distribution of the top edges."""

from biasdrift.circuits.jobs import analyze_stability
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(
            analyze_stability(
                score_files=list(smk.input.scores),
                top_k=smk.params.top_k,
                ranking=smk.params.ranking,
                outputs={k: v for k, v in smk.output.items() if k != "manifest"},
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
