"""Rule summarize_tinystories: results and recovery tables, probe table, marker-vs-judge
agreement, and the checks."""

from biasdrift.runtime import job_for
from biasdrift.tinystories.report import summarize


def main(smk) -> None:
    out = smk.output
    with job_for(smk) as record:
        record.update(
            summarize(
                evals=list(smk.input.evals),
                probes=list(smk.input.probes),
                recoveries=list(smk.input.recoveries),
                layout=smk.params.layout,
                out_results=out.results,
                out_recovery=out.recovery,
                out_probes=out.probes,
                out_checks=out.checks,
                out_agreement=out.agreement,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
