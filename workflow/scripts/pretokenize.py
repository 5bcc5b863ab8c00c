"""Rule pretokenize: one dataset variant as uint16 shards of BOS-delimited examples."""

from biasdrift.runtime import job_for
from biasdrift.tinystories.pretokenize import PretokenizeConfig, pretokenize
from biasdrift.tinystories.transforms import spec_from_dict
from biasdrift.training import config_from_dict


def main(smk) -> None:
    values = dict(smk.params.spec)
    dataset = values.pop("dataset")
    with job_for(smk) as record:
        spec = spec_from_dict(values, f"studies.tinystories.datasets.{dataset}")
        cfg = config_from_dict(PretokenizeConfig, smk.params.pretokenize, "studies.tinystories.pretokenize")
        meta = pretokenize(
            smk.input.shards, smk.input.tokenizer, spec, cfg, smk.output.shards, smk.output.meta, workers=smk.threads
        )
        record.update({"dataset": dataset, "name": meta["name"], **meta["totals"]})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
