"""Rule plot_d3m_sweep: the sweep's figure (every world, every method)."""

import pandas as pd

from biasdrift.d3m.plots import sweep_figure
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(sweep_figure(pd.read_csv(smk.input.csv), smk.output.svg, smk.output.csv))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
