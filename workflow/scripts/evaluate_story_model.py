"""Rule evaluate_story_model: losses, feature rates of sampled stories, the marker
log-probability and per-layer probes of one base or deletion model."""

from biasdrift.runtime import choose_device, job_for
from biasdrift.tinystories.evaluation import evaluate_model


def main(smk) -> None:
    params = smk.params
    with job_for(smk, seed=params.evaluation["seed"]) as record:
        result = evaluate_model(
            model_dir=smk.input.model,
            shard_dir=smk.input.shards,
            tokenizer_model=smk.input.tokenizer,
            eval_sets=params.eval_sets,
            evaluation=params.evaluation,
            probes=params.probes,
            block_size=params.block_size,
            instruction_subset=params.instruction_subset,
            judge=params.judge,
            feature=params.feature,
            device=choose_device(params.runtime["device"]),
            threads=smk.threads,
            out_eval=smk.output.evaluation,
            out_probes=smk.output.probes,
            out_generations=smk.output.generations,
        )
        record.update(result)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
