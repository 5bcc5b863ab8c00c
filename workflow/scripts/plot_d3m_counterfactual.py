"""Rule plot_d3m_counterfactual: a test metric against k per method, with reference lines."""

import pandas as pd

from biasdrift.d3m.plots import counterfactual_curves
from biasdrift.runtime import job_for, read_json


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(
            counterfactual_curves(
                pd.read_csv(smk.input.summary, dtype={"k": str}),
                read_json(smk.input.selection),
                smk.params.metrics,
                smk.output.svg,
                smk.output.csv,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
