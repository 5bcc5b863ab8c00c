"""Rule evaluate_politune: statement probe, free-text answers and held-out pairs of one model state."""

from biasdrift.politune.evaluate import evaluate_from_params
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    params, runtime = smk.params.eval, smk.params.runtime
    with job_for(smk, seed=params["seed"], deterministic=runtime["deterministic"]) as record:
        inputs = dict(smk.input.items())
        record.update(
            evaluate_from_params(
                params,
                ref=smk.params.model,
                inputs=inputs,
                out={k: smk.output[k] for k in ("statements", "answers", "preferences")},
                device=choose_device(runtime["device"]),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
