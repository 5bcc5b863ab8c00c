"""Rule make_prompts: the clean/corrupted prompt pairs of one template and corruption."""

from biasdrift.circuits.jobs import make_prompts
from biasdrift.runtime import job_for


def main(smk) -> None:
    wc = smk.wildcards
    with job_for(smk) as record:
        record.update(
            make_prompts(
                smk.params.groups, smk.params.underscores, wc.bias, wc.template, wc.corruption, smk.output.prompts
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
