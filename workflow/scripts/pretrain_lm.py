"""Rule pretrain_lm: build one tiny model alias and pretrain it from scratch."""

from biasdrift.config import config_from_dict
from biasdrift.models import ModelSize
from biasdrift.pretrain import PretrainConfig, pretrain_lm
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    build, runtime = smk.params.build, smk.params.runtime
    where = f"models.{smk.wildcards.model}.build"
    with job_for(smk, seed=build["seed"], deterministic=runtime["deterministic"]) as record:
        metrics = pretrain_lm(
            arch=build["arch"],
            size=config_from_dict(ModelSize, build["size"], f"{where}.size"),
            tokenizer_dir=smk.input.tokenizer,
            corpus_path=smk.input.data,
            text_column=build["text_column"],
            out_dir=smk.output.model,
            metrics_path=smk.output.metrics,
            scratch_dir=smk.params.scratch,
            cfg=config_from_dict(PretrainConfig, build["pretrain"], f"{where}.pretrain"),
            seed=build["seed"],
            device=choose_device(runtime["device"]),
        )
        record.update({k: metrics[k] for k in ("global_step", "train_loss", "final_eval", "resumed_from_step")})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
