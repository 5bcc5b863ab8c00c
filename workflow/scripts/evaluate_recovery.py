"""Rule evaluate_recovery: losses, feature rate and marker log-probability at every
recovery checkpoint of one run."""

from biasdrift.runtime import choose_device, job_for
from biasdrift.tinystories.evaluation import evaluate_recovery


def main(smk) -> None:
    params = smk.params
    with job_for(smk, seed=params.evaluation["seed"]) as record:
        result = evaluate_recovery(
            checkpoints=dict(zip(params.steps, smk.input.checkpoints, strict=True)),
            shard_dir=smk.input.shards,
            tokenizer_model=smk.input.tokenizer,
            eval_sets=params.eval_sets,
            evaluation=params.evaluation,
            block_size=params.block_size,
            instruction_subset=params.instruction_subset,
            judge=params.judge,
            feature=params.feature,
            device=choose_device(params.runtime["device"]),
            threads=smk.threads,
            out_eval=smk.output.evaluation,
            out_generations=smk.output.generations,
        )
        record.update(result)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
