"""Rule summarize_bias: bias per group class for every model and fine-tune, with
bootstrap intervals and the change against the base model."""

from biasdrift.circuits.jobs import summarize_bias
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(
            summarize_bias(
                tables=list(smk.input.tables),
                params=smk.params.summary,
                out_csv=smk.output.csv,
                out_json=smk.output.json,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
