"""Rule plot_circuits_comparisons: top-edge overlap of every fine-tuned model with its base."""

from biasdrift.circuits.plots import plot_comparisons
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(plot_comparisons(list(smk.input.comparisons), smk.output.svg, smk.output.csv))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
