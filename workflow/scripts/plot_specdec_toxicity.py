"""Rule plot_specdec_toxicity: toxic rates with Wilson intervals per condition."""

import pandas as pd

from biasdrift.runtime import job_for
from biasdrift.specdec.figures import toxicity_rates


def main(smk) -> None:
    wc = smk.wildcards
    with job_for(smk) as record:
        summary = pd.read_csv(smk.input.summary)
        title = f"view {wc.view}, N={wc.n}"
        record.update(toxicity_rates(summary, smk.params.reference, smk.output.svg, smk.output.csv, title))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
