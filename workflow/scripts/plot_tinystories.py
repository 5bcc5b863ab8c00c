"""Rule plot_tinystories: recovery curves, probe accuracy by layer, deletion grid."""

from biasdrift.runtime import job_for
from biasdrift.tinystories.report import plot_all


def main(smk) -> None:
    with job_for(smk) as record:
        outputs = {k: v for k, v in smk.output.items() if k != "manifest"}
        record.update(
            plot_all(
                results_csv=smk.input.results,
                recovery_csv=smk.input.recovery,
                probes_csv=smk.input.probes,
                feature=smk.params.feature,
                outputs=outputs,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
