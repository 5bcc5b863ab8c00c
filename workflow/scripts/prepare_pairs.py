"""Rule prepare_pairs: one side's preference pairs, cleaned and split (or a mix of sides)."""

from biasdrift.politune.pairs import PairsConfig, prepare_pairs
from biasdrift.runtime import job_for
from biasdrift.training import config_from_dict


def main(smk) -> None:
    with job_for(smk) as record:
        inputs = {k: v for k, v in smk.input.items() if k}
        cfg = config_from_dict(PairsConfig, smk.params.data, "studies.politune.data")
        record.update(prepare_pairs(smk.params.spec, inputs, smk.output.data, cfg))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
