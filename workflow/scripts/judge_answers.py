"""Rule judge_answers: score every free-text answer of one model's states with the judge."""

from biasdrift.politune.judge import judge_files
from biasdrift.runtime import choose_device, job_for


def main(smk) -> None:
    params = smk.params.judge
    with job_for(smk) as record:
        record.update(
            judge_files(
                params["judge"],
                dict(zip(params["states"], smk.input.answers, strict=True)),
                smk.output.judged,
                ref=params["judge_ref"],
                device=choose_device(smk.params.runtime["device"]),
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
