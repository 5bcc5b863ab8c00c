"""Rule merge_adapter: a run's final adapter merged into its base (checked against the logits)."""

from biasdrift.politune.adapters import LoraSettings, merge_and_save
from biasdrift.runtime import choose_device, job_for
from biasdrift.training import config_from_dict


def main(smk) -> None:
    with job_for(smk) as record:
        lora = config_from_dict(LoraSettings, smk.params.lora, "studies.politune.lora")
        device = choose_device(smk.params.runtime["device"])
        record.update(merge_and_save(smk.params.model, f"{smk.input.adapters}/final", lora, smk.output.merged, device))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
