"""Config loading and validation, wildcard constraints, input functions, CODE_VERSION
and get_final_outputs(). The logic lives in biasdrift.config (importable, testable,
no torch); this file only binds it to the workflow."""

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from biasdrift import config as bdc  # noqa: E402
from biasdrift.cluster import patch_slurm_executor  # noqa: E402

# the Slurm executor would wait forever for a job cancelled with scancel (biasdrift.cluster)
patch_slurm_executor(sys.modules.get("snakemake_executor_plugin_slurm"))

try:
    # Snakemake reads --configfile with PyYAML, which keeps the last of two equal keys
    bdc.check_no_duplicate_keys(workflow.configfiles)
    bdc.validate_config(
        config, bdc.load_schema(Path(workflow.basedir) / "config" / "schema.yaml")
    )
except bdc.ConfigError as err:
    raise WorkflowError(str(err)) from None

for _unpinned in bdc.unpinned_revisions(config):
    logger.warning(
        f"unpinned hub revision (pin a commit sha to reproduce): {_unpinned}"
    )
for _alias, _spec in config["models"].items():
    if _spec["trust_remote_code"]:
        logger.warning(
            f"models.{_alias}: trust_remote_code is on; code from the hub will run"
        )


# Bump a stage's number when a change to biasdrift should invalidate its results
# (params are tracked by Snakemake; package code is not). Studies declare theirs in
# biasdrift.<study>.workflow.CODE_VERSION.
CODE_VERSION = {
    "prepare_dataset": 2,
    "train_tokenizer": 3,
    "pretrain_lm": 2,
    "download_model": 2,
    "plot_pretraining": 2,
    "build_smoke_model": 2,
    "build_smoke_dataset": 2,
    **bdc.study_code_versions(),
}

STUDIES = sorted(config["studies"])
DATASETS = sorted(config["datasets"])
TOKENIZERS = sorted(config["tokenizers"])
MODELS = sorted(config["models"])
BUILD_MODELS = bdc.aliases_by_source(config, "models", "build")
HUB_MODELS = bdc.aliases_by_source(config, "models", "hf_id")
SMOKE_FIXTURES = bdc.smoke_fixture_names()


def alias_regex(names):
    """A wildcard constraint that matches exactly these aliases (nothing if empty)."""
    if not names:
        return "(?!)"
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


wildcard_constraints:
    study=alias_regex(bdc.STUDIES),
    dataset=alias_regex(DATASETS),
    tokenizer=alias_regex(TOKENIZERS),
    model=alias_regex(MODELS),
    seed=r"\d+",


def get_final_outputs():
    return bdc.final_outputs(config)


# --------------------------------------------------------------- input functions
def get_dataset_inputs(wildcards):
    return bdc.dataset_inputs(config, wildcards.dataset)


def get_dataset_ref(wildcards):
    return bdc.dataset_ref(config, wildcards.dataset)


def get_tokenizer_corpus(wildcards):
    return bdc.dataset_file(config["tokenizers"][wildcards.tokenizer]["corpus"])


def get_build_corpus(wildcards):
    return bdc.dataset_file(config["models"][wildcards.model]["build"]["corpus"])


def get_build_tokenizer(wildcards):
    return bdc.tokenizer_dir(config["models"][wildcards.model]["build"]["tokenizer"])


def get_model_ref(wildcards):
    return bdc.model_ref(config, wildcards.model)


def get_model_inputs(wildcards):
    return bdc.model_inputs(config, wildcards.model)


def study_input(study, name):
    """Input or params function ``name`` of biasdrift.<study>.workflow, bound to the
    config: ``input: prompts=study_input("circuits", "prompt_files")`` calls
    ``prompt_files(config, wildcards)``."""
    import importlib

    func = getattr(importlib.import_module(f"biasdrift.{study}.workflow"), name)

    def bound(wildcards):
        return func(config, wildcards)

    bound.__name__ = f"{study}_{name}"
    return bound


STAGE_GLUE = {"models": "biasdrift.workflow"}


def stage_params(study, rule):
    """The whole params of stage ``rule`` (``params: job=stage_params("circuits",
    "eval_bias")``): glue function ``rule(config, wildcards)`` of
    biasdrift.<study>.workflow (biasdrift.workflow for the shared stages), whose keys are
    the fields of the stage's job dataclass (snakejob.run converts them strictly)."""
    import importlib

    glue = importlib.import_module(STAGE_GLUE.get(study, f"biasdrift.{study}.workflow"))
    func = getattr(glue, rule)

    def bound(wildcards):
        return func(config, wildcards)

    bound.__name__ = rule
    return bound


def get_pretrain_metrics(wildcards):
    return [f"results/models/{alias}/train_metrics.json" for alias in BUILD_MODELS]
