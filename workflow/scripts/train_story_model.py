"""Rules pretrain_story_model, delete_feature and recover_feature: one story model
trained with the shared HF Trainer loop (biasdrift.tinystories.training)."""

from biasdrift.runtime import choose_device, job_for
from biasdrift.tinystories.training import ModelSpec, stage_config, train_story_model
from biasdrift.training import config_from_dict


def main(smk) -> None:
    params, rule = smk.params, smk.rule
    stage = params.stage
    where = {"pretrain_story_model": "pretrain", "delete_feature": "deletion", "recover_feature": "recovery"}[rule]
    seed = stage["seed"] if rule == "pretrain_story_model" else int(params.seed)
    overrides = {}
    if rule == "delete_feature":
        overrides["learning_rate"] = float(params.learning_rate)
    if rule == "recover_feature":
        overrides["max_steps"] = max(params.steps)
    with job_for(smk, seed=seed, deterministic=params.runtime["deterministic"]) as record:
        cfg = stage_config(stage, params.settings, f"studies.tinystories.{where}", **overrides)
        kwargs = {}
        if rule == "pretrain_story_model":
            kwargs["build"] = config_from_dict(ModelSpec, params.model, "studies.tinystories.model")
        else:
            kwargs["init_ref"] = {"alias": f"tinystories:{smk.input.init}", "source": "path", "path": smk.input.init}
        if rule == "recover_feature":
            paths = dict(zip(params.steps, smk.output.checkpoints, strict=True))
            kwargs["out_dir"] = paths.pop(cfg.max_steps)
            kwargs["snapshot_steps"] = paths
        else:
            kwargs["out_dir"] = smk.output.model
        metrics = train_story_model(
            train_dir=smk.input.data,
            split="pretrain" if rule == "pretrain_story_model" else "finetune",
            cfg=cfg,
            seed=seed,
            device=choose_device(params.runtime["device"]),
            metrics_path=smk.output.metrics,
            scratch_dir=params.scratch,
            tokenizer_model=smk.input.tokenizer,
            pretrain_fraction=params.settings["pretrain_fraction"],
            threads=smk.threads,
            **kwargs,
        )
        keys = ("global_step", "train_loss", "final_eval", "resumed_from_step", "tokens_per_second", "mfu")
        record.update({k: metrics[k] for k in keys})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
