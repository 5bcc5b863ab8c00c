"""Rule plot_circuits_stability: overlap heatmap and layer distribution of one model's circuits."""

from biasdrift.circuits.plots import plot_stability
from biasdrift.runtime import job_for


def main(smk) -> None:
    out = smk.output
    with job_for(smk) as record:
        record.update(
            plot_stability(
                smk.input.matrix,
                smk.input.layerwise,
                smk.wildcards.model,
                out.heatmap,
                out.heatmap_csv,
                out.layers,
                out.layers_csv,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
