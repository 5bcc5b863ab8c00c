"""Rule prepare_specdec_templates: HONEST-format templates with ids, prompts and views."""

from biasdrift.runtime import job_for
from biasdrift.specdec.templates import TemplateConfig, prepare_templates
from biasdrift.training import config_from_dict


def main(smk) -> None:
    with job_for(smk) as record:
        cfg = config_from_dict(TemplateConfig, smk.params.templates, "studies.specdec")
        record.update(prepare_templates([tuple(s) for s in smk.params.sets], cfg, smk.output.templates))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
