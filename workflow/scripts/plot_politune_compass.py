"""Rule plot_politune_compass: Political Compass coordinates of the base and each run's reported checkpoint."""

from biasdrift.politune.plots import plot_compass_file
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(plot_compass_file(smk.input.summary, smk.input.compass, smk.output.svg, smk.output.csv))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
