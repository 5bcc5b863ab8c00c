"""Rule plot_specdec_kl_curve: KL terms over fine-tuning."""

import pandas as pd

from biasdrift.runtime import job_for
from biasdrift.specdec.figures import kl_curve


def main(smk) -> None:
    with job_for(smk) as record:
        record.update(kl_curve(pd.read_csv(smk.input.curve), smk.output.svg, smk.output.csv))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
