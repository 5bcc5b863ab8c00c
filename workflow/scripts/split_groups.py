"""Rules split_demographic / split_gender: the base model's group split of one template."""

from biasdrift.circuits.jobs import split_groups
from biasdrift.runtime import job_for


def main(smk) -> None:
    wc = smk.wildcards
    outputs = {k: v for k, v in smk.output.items() if k != "manifest"}
    with job_for(smk) as record:
        record.update(split_groups(smk.input.table, smk.params.bias, wc.template, wc.corruption, outputs))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
