"""Rule summarize_specdec_sampling: measured acceptance of speculative sampling per
condition and category against its expectation 1 − TV, and the contrast's difference."""

from biasdrift.runtime import job_for
from biasdrift.specdec.sampling import summarize_sampling


def main(smk) -> None:
    settings = smk.params.settings
    with job_for(smk) as record:
        record.update(
            summarize_sampling(
                sampled=dict(smk.params.sampled),
                contrast=list(settings["contrast"]),
                n_boot=int(settings["n_boot"]),
                seed=int(settings["seed"]),
                level=float(settings["level"]),
                out_csv=smk.output.acceptance,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
