"""Rule plot_politune_judge: the judge's mean score of free-text answers against step."""

from biasdrift.politune.plots import plot_judge_file
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(plot_judge_file(smk.input.judge, smk.output.svg, smk.output.csv))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
