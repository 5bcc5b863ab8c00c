"""Rule plot_circuits_ablation: ablation curves and EAP against exact patching."""

from biasdrift.circuits.plots import plot_ablation
from biasdrift.runtime import job_for


def main(smk) -> None:
    out = smk.output
    with job_for(smk) as record:
        record.update(plot_ablation(list(smk.input.ablations), out.svg, out.csv, out.exact_svg, out.exact_csv))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
