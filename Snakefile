# biasdrift: how fine-tuning changes bias in language models (five studies, one workflow).
#
# Results path grammar (logs/ and benchmarks/ mirror it):
#   results/datasets/{dataset}/data.parquet           every dataset alias, normalised (split column)
#   results/tokenizers/{tokenizer}/tokenizer/         tokenizers trained locally
#   results/models/{model}/model/                     models built + pretrained from scratch
#   results/models/{model}/download.json              hub models fetched into the HF cache
#   results/models/plots/{plot}.svg|.csv              model-level figures (report)
#   results/{study}/...                               one root per study (rules/{study}.smk)
#   results/report.html                               snakemake --report results/report.html
# Resumable training state lives in undeclared .scratch/ folders beside the outputs.

from snakemake.utils import min_version

min_version("9.14.8")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/circuits.smk"
include: "rules/politune.smk"
include: "rules/specdec.smk"
include: "rules/d3m.smk"
include: "rules/tinystories.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    localrule: True
    input:
        get_final_outputs(),
