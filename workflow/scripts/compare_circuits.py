"""Rule compare_circuits: top edges of a fine-tuned model against its base model."""

from biasdrift.circuits.jobs import compare_circuits
from biasdrift.circuits.prompts import display
from biasdrift.runtime import job_for


def main(smk) -> None:
    wc = smk.wildcards
    fields = {
        "Base Model": wc.model,
        "Fine-tuned Model Path": smk.params.model["path"],
        "Fine-tune": wc.ft,
        "Bias Type": wc.bias,
        "Sentence Template": display(wc.template),
        "Corruption": display(wc.corruption),
        "Metric": display(wc.metric),
    }
    with job_for(smk) as record:
        record.update(
            compare_circuits(
                inputs=dict(smk.input.items()),
                n_edges=smk.params.compare["n_edges"],
                ranking=smk.params.ranking,
                fields_=fields,
                out_txt=smk.output.report,
                out_json=smk.output.json,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
