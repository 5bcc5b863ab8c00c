"""Rule plot_pretraining: loss curves of every model pretrained from scratch."""

from biasdrift.plots import plot_training_curves
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        curves = dict(zip(smk.params.models, smk.input.metrics, strict=True))
        record.update(plot_training_curves(curves, smk.output.svg, smk.output.csv))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
