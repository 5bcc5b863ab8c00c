"""Rule plot_specdec_sampling: speculative sampling's measured acceptance vs 1 − TV."""

import pandas as pd

from biasdrift.runtime import job_for
from biasdrift.specdec.figures import sampling_acceptance


def main(smk) -> None:
    wc = smk.wildcards
    with job_for(smk) as record:
        table = pd.read_csv(smk.input.acceptance)
        title = f"speculative sampling, view {wc.view}, K={wc.k}, N={wc.n}"
        record.update(sampling_acceptance(table, smk.params.reference, smk.output.svg, smk.output.csv, title))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
