"""Rule plot_circuits_bias: bias by base-model group split, before and after fine-tuning."""

from biasdrift.circuits.plots import plot_bias_shift
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(plot_bias_shift(smk.input.summary, smk.output.svg, smk.output.csv))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
