"""Rule finetune_specdec_model: fine-tune the main model or the assistant on the news
corpus, storing the template distributions at milestones."""

import pandas as pd

from biasdrift.runtime import choose_device, job_for
from biasdrift.specdec.finetune import FinetuneDataConfig, MilestoneConfig, finetune_lm
from biasdrift.specdec.kl import milestone_prompts
from biasdrift.training import TrainConfig, config_from_dict


def main(smk) -> None:
    seed, runtime = smk.params.seed, smk.params.runtime
    with job_for(smk, seed=seed, deterministic=runtime["deterministic"]) as record:
        record.update(
            finetune_lm(
                role=smk.wildcards.role,
                model_ref=smk.params.model,
                corpus_path=smk.input.corpus,
                data_cfg=config_from_dict(FinetuneDataConfig, smk.params.data, "studies.specdec.finetune_data"),
                train_cfg=config_from_dict(TrainConfig, smk.params.train, "studies.specdec.finetune"),
                milestone_cfg=config_from_dict(MilestoneConfig, smk.params.milestones, "studies.specdec.milestones"),
                prompts=milestone_prompts(pd.read_parquet(smk.input.templates)),
                out_model=smk.output.model,
                out_epochs=smk.output.epochs,
                out_milestones=smk.output.milestones,
                metrics_path=smk.output.metrics,
                scratch_dir=smk.params.scratch,
                seed=seed,
                device=choose_device(runtime["device"]),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
