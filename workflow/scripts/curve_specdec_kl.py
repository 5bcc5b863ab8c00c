"""Rule curve_specdec_kl: the KL terms over fine-tuning, from both roles' milestones."""

from biasdrift.runtime import job_for
from biasdrift.specdec.kl import kl_curve


def main(smk) -> None:
    stats = smk.params.stats
    with job_for(smk) as record:
        record.update(
            kl_curve(
                main_dir=smk.input.main,
                assistant_dir=smk.input.assistant,
                templates_path=smk.input.templates,
                views=list(smk.params.views),
                n_boot=stats["n_boot"],
                ci=stats["ci"],
                seed=stats["seed"],
                out_path=smk.output.curve,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
