"""Rule finetune_d3m_base: fine-tune the base classifier of one world with one seed."""

from biasdrift.d3m.classifier import set_threads
from biasdrift.d3m.counterfactual import finetune_base, run_spec
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk, seed=int(smk.wildcards.seed), deterministic=smk.params.runtime["deterministic"]) as record:
        set_threads(smk.threads)
        record.update(finetune_base(run_spec(smk), smk.output.model))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
