# biasdrift: how fine-tuning changes bias in language models (five studies, one workflow).
#
# Results path grammar (logs/ and benchmarks/ mirror it):
#   results/datasets/{dataset}/data.parquet           every dataset alias, normalised (split column)
#   results/tokenizers/{tokenizer}/tokenizer/         tokenizers trained locally
#   results/models/{model}/model/                     models built + pretrained from scratch
#   results/models/{model}/download.json              hub models fetched into the HF cache
#   results/models/plots/{plot}.svg|.csv              model-level figures (report)
#   results/{study}/...                               one root per study (rules/{study}.smk)
#   results/matrix/...                                the cross-study probe matrix (rules/matrix.smk)
#   results/report.html                               snakemake --report results/report.html
# Resumable training state lives in undeclared .scratch/ folders beside the outputs.

import os

from snakemake.utils import min_version

min_version("9.14.8")


# Snakemake 9.27 does not pass --replace-workflow-config on to the jobs it submits (e.g.
# to Slurm): they would merge config/config.yaml into the given --configfile and so run
# with another config. The main process tells them through the environment they inherit
# (sbatch --export=ALL); tests/test_slurm.py runs tests/config/tiny.yaml on Slurm.
REPLACE_CONFIG_ENV = "BIASDRIFT_REPLACE_WORKFLOW_CONFIG"
if workflow.is_main_process:
    os.environ[REPLACE_CONFIG_ENV] = str(
        int(workflow.config_settings.replace_workflow_config)
    )
if workflow.is_main_process or os.environ.get(REPLACE_CONFIG_ENV) != "1":

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/circuits.smk"
include: "rules/politune.smk"
include: "rules/specdec.smk"
include: "rules/d3m.smk"
include: "rules/tinystories.smk"
include: "rules/matrix.smk"
include: "rules/smoke.smk"


rule all:
    default_target: True
    localrule: True
    input:
        get_final_outputs(),
