"""Glue of the shared stages (rules/models.smk): one function per rule, named like it,
``f(config, wildcards) -> dict``, the stage's whole params (the fields of its job
dataclass in :mod:`biasdrift.jobs`). Plain Python: imported while Snakemake parses."""

from __future__ import annotations

from typing import Any

from biasdrift import config as bdc


def prepare_dataset(config: dict, wildcards: Any) -> dict[str, Any]:
    return {"dataset": bdc.dataset_ref(config, wildcards.dataset)}


def train_tokenizer(config: dict, wildcards: Any) -> dict[str, Any]:
    spec = config["tokenizers"][wildcards.tokenizer]
    tokenizer = {k: v for k, v in spec.items() if k not in ("corpus", "text_column")}
    return {"tokenizer": tokenizer, "text_column": spec["text_column"]}


def pretrain_lm(config: dict, wildcards: Any) -> dict[str, Any]:
    build = config["models"][wildcards.model]["build"]
    return {
        "arch": build["arch"],
        "size": build["size"],
        "pretrain": build["pretrain"],
        "text_column": build["text_column"],
        "seed": build["seed"],
        "runtime": config["runtime"],
        "scratch": f"results/models/{wildcards.model}/.scratch/pretrain_lm",
    }


def download_model(config: dict, wildcards: Any) -> dict[str, Any]:
    return {"model": bdc.model_ref(config, wildcards.model)}


def plot_pretraining(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    return {"models": bdc.aliases_by_source(config, "models", "build")}
