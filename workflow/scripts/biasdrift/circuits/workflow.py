"""Workflow glue of study "circuits" (torch-free, imported while Snakemake parses).

Results (``{ft}`` is ``base`` or a key of ``studies.circuits.finetunes``; ``{run}`` below
stands for ``{bias}_{template}_{corruption}_{metric}``)::

    results/circuits/prompts/{bias}_{template}_{corruption}.csv           make_prompts
    results/circuits/{model}/{ft}/bias/{corruption}.parquet|.json         eval_bias (all templates)
    results/circuits/{model}/splits/{bias}_{template}_{corruption}_{pos|neg|mb|fb|stats}.csv
                                                                          split_demographic / split_gender
    results/circuits/{model}/{ft}/eap/{run}/edge_scores.parquet           discover_circuit (+ top_edges.txt,
                                                                          circuit.json, results.txt|json)
    results/circuits/{model}/{ft}/eap/{run}/ablation.csv                  ablate_circuit (+ faithfulness.csv,
                                                                          exact_check.csv|json)
    results/circuits/{model}/{ft}/tasks/{task}/edge_scores.parquet        discover_task_circuit (+ top_edges.txt,
                                                                          faithfulness.csv, results.json)
    results/circuits/{model}/{ft}/model/ + train_metrics.json             finetune_circuits (ft != base)
    results/circuits/{model}/{ft}/compare/{run}_finetuned_comparison.txt  compare_circuits (+ .json)
    results/circuits/{model}/stability/...                                analyze_stability
    results/circuits/bias_summary.csv                                     summarize_bias
    results/circuits/plots/*.svg|.csv                                     plot_circuits_* (report)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from biasdrift import config as bdc
from biasdrift.circuits.prompts import BIAS_TEMPLATES, TEMPLATES, check_pairing, display

CODE_VERSION = {
    "make_prompts": 2,
    "eval_bias": 2,
    "split_demographic": 2,
    "split_gender": 2,
    "discover_circuit": 2,
    "ablate_circuit": 3,
    "finetune_circuits": 3,
    "compare_circuits": 2,
    "analyze_stability": 2,
    "summarize_bias": 2,
    "plot_circuits_bias": 2,
    "plot_circuits_comparisons": 2,
    "plot_circuits_stability": 2,
    "plot_circuits_ablation": 3,
    "discover_task_circuit": 2,
}

ROOT = "results/circuits"
SPLITS = {"demographic": ("pos", "neg"), "gender": ("mb", "fb")}
CAUSAL_ARCHS = ("gpt2", "llama")
WORLD_GENERATOR = "circuits_world"


def study(config: dict) -> dict:
    return config["studies"]["circuits"]


# --------------------------------------------------------------------------- runs
def runs(config: dict) -> list[dict[str, str]]:
    """Every configured (bias, template, corruption, metric) of the base models."""
    cfg = study(config)
    out = []
    for template in cfg["templates"]:
        bias = TEMPLATES[template].bias
        for corruption in cfg["corruptions"]:
            for metric in cfg["metrics"][bias]:
                out.append({"bias": bias, "template": template, "corruption": corruption, "metric": metric})
    return out


def run_name(run: dict[str, str]) -> str:
    return f"{run['bias']}_{run['template']}_{run['corruption']}_{run['metric']}"


def listed_runs(config: dict, section: str) -> list[dict[str, str]]:
    """compare.runs / ablation.runs with their bias filled in."""
    return [{"bias": TEMPLATES[r["template"]].bias, **r} for r in study(config)[section]["runs"]]


def eap_dir(model: str, ft: str, run: dict[str, str]) -> str:
    return f"{ROOT}/{model}/{ft}/eap/{run_name(run)}"


def ft_model_dir(model: str, ft: str) -> str:
    return f"{ROOT}/{model}/{ft}/model"


# --------------------------------------------------------------------------- checks
def problems(config: dict) -> list[str]:
    """Cross references the schema cannot express, one message per problem naming the key."""
    cfg, out, where = study(config), [], "studies.circuits"
    if "models" not in cfg:  # a section that is not this study's schema (a foundation test's fake fragment)
        return []
    models = config.get("models", {})
    for i, alias in enumerate(cfg["models"]):
        if alias not in models:
            out.append(bdc._unknown("model", alias, f"{where}.models[{i}]", models))
        elif "build" in models[alias] and models[alias]["build"]["arch"] not in CAUSAL_ARCHS:
            out.append(f"{where}.models[{i}]: {alias!r} is a {models[alias]['build']['arch']} model, not a causal LM")
    for bias in BIAS_TEMPLATES:
        group = cfg["groups"][bias]
        if "world" in group:
            spec = config.get("datasets", {}).get(group["world"])
            if spec is None:
                out.append(
                    bdc._unknown("dataset", group["world"], f"{where}.groups.{bias}.world", config.get("datasets", {}))
                )
            elif spec.get("generate", {}).get("generator") != WORLD_GENERATOR:
                dataset = group["world"]
                out.append(
                    f"{where}.groups.{bias}.world: dataset {dataset!r} is not made by generator {WORLD_GENERATOR}"
                )
        elif not Path(group["file"]).is_file():
            out.append(f"{where}.groups.{bias}.file: {group['file']} does not exist")
    sentiment = cfg["sentiment"]
    if sentiment["backend"] == "hf":
        if not sentiment.get("model"):
            out.append(f"{where}.sentiment.model: the hf backend needs a model alias")
        elif sentiment["model"] not in models:
            out.append(bdc._unknown("model", sentiment["model"], f"{where}.sentiment.model", models))
    elif not Path(sentiment["lexicon"]).is_file():
        out.append(f"{where}.sentiment.lexicon: {sentiment['lexicon']} does not exist")
    if not Path(cfg["gender_terms"]).is_file():
        out.append(f"{where}.gender_terms: {cfg['gender_terms']} does not exist")
    for name, ft in cfg["finetunes"].items():
        key = f"{where}.finetunes.{name}"
        if name == "base":
            out.append(f"{key}: 'base' names the models before fine-tuning; choose another name")
        if ft["kind"] == "unrelated":
            if not ft.get("dataset"):
                out.append(f"{key}.dataset: an unrelated fine-tune needs a dataset alias")
            elif ft["dataset"] not in config.get("datasets", {}):
                out.append(bdc._unknown("dataset", ft["dataset"], f"{key}.dataset", config.get("datasets", {})))
        elif not ft.get("bias"):
            out.append(f"{key}.bias: a positive_bias fine-tune needs bias demographic or gender")
        elif ft["frames"] == "heldout" and ft["bias"] != "demographic":
            out.append(f"{key}.frames: 'heldout' exists for bias demographic only (the gender set is male praise)")
        train = ft["train"]
        if train.get("early_stopping_patience") and not train.get("eval_steps"):
            out.append(f"{key}.train.early_stopping_patience: needs eval_steps > 0")
    for name, task in sorted(cfg["tasks"].items()):
        if not Path(task["file"]).is_file():
            out.append(
                f"{where}.tasks.{name}.file: {task['file']} does not exist (a TSV: clean, corrupted, answer, "
                "distractor; docs/circuits.md)"
            )
    for section in ("compare", "ablation"):
        for i, run in enumerate(cfg[section]["runs"]):
            key = f"{where}.{section}.runs[{i}]"
            template = run["template"]
            bias = TEMPLATES[template].bias
            if template not in cfg["templates"]:
                out.append(f"{key}.template: {template} is not in {where}.templates {cfg['templates']}")
            if run["corruption"] not in cfg["corruptions"]:
                out.append(f"{key}.corruption: {run['corruption']} is not in {where}.corruptions {cfg['corruptions']}")
            if run["metric"] not in cfg["metrics"][bias]:
                out.append(f"{key}.metric: {run['metric']} is not in {where}.metrics.{bias} {cfg['metrics'][bias]}")
    return out


# --------------------------------------------------------------------------- targets
def targets(config: dict) -> list[str]:
    cfg = study(config)
    out: list[str] = []
    for model in cfg["models"]:
        # the group split of every prompt set (the original's stats CSV), whichever split EAP uses
        for bias, template, corruption in dict.fromkeys(
            (r["bias"], r["template"], r["corruption"]) for r in runs(config)
        ):
            out.append(f"{ROOT}/{model}/splits/{bias}_{template}_{corruption}_stats.csv")
        for run in runs(config):
            base = eap_dir(model, "base", run)
            out += [f"{base}/edge_scores.parquet", f"{base}/top_edges.txt", f"{base}/results.txt"]
        for run in listed_runs(config, "ablation"):
            out.append(f"{eap_dir(model, 'base', run)}/ablation.csv")
        for ft in cfg["finetunes"]:
            for run in listed_runs(config, "compare"):
                out.append(f"{ROOT}/{model}/{ft}/compare/{run_name(run)}_finetuned_comparison.txt")
        out += stability_outputs(model)
        out += [f"{ROOT}/plots/stability_{model}.svg", f"{ROOT}/plots/layerwise_{model}.svg"]
    out += [f"{ROOT}/bias_summary.csv", f"{ROOT}/plots/bias_shift.svg"]
    if cfg["finetunes"] and cfg["compare"]["runs"]:
        out.append(f"{ROOT}/plots/comparisons.svg")
    if cfg["ablation"]["runs"]:
        out.append(f"{ROOT}/plots/ablation.svg")
    for model in cfg["models"]:
        for task in cfg["tasks"]:
            out += [
                f"{task_dir(model, 'base', task)}/results.json",
                f"{task_dir(model, 'base', task)}/faithfulness.csv",
            ]
    return out


def task_dir(model: str, ft: str, task: str) -> str:
    return f"{ROOT}/{model}/{ft}/tasks/{task}"


def task_file(config: dict, wildcards) -> str:
    tasks = study(config)["tasks"]
    if wildcards.task not in tasks:
        raise ValueError(f"unknown circuits task {wildcards.task!r}; known: {', '.join(sorted(tasks)) or 'none'}")
    return tasks[wildcards.task]["file"]


def task_pattern(config: dict) -> str:
    names = sorted(study(config)["tasks"], key=len, reverse=True) if "circuits" in config.get("studies", {}) else []
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def stability_outputs(model: str) -> list[str]:
    base = f"{ROOT}/{model}/stability"
    return [
        f"{base}/overlap_matrix.csv",
        f"{base}/grammatical_stability.txt",
        f"{base}/bias_type_stability.txt",
        f"{base}/layerwise.csv",
    ]


# --------------------------------------------------------------------------- groups
def world_groups(config: dict, alias: str) -> dict[str, dict[str, list[str]]]:
    """The planted groups of a circuits_world dataset (its generator params + defaults)."""
    from biasdrift.circuits.generators import CircuitsWorldParams
    from biasdrift.circuits.generators import world_groups as planted

    params = config["datasets"][alias]["generate"].get("params") or {}
    return planted(bdc.from_schema(CircuitsWorldParams, **params))


def group_source(config: dict, bias: str) -> dict[str, Any]:
    """What load_groups reads: a file + column, or the names planted in a world; and
    ``max_groups`` when the list is cut (studies.circuits.max_groups)."""
    cfg = study(config)
    group = cfg["groups"][bias]
    if "world" in group:
        classes = world_groups(config, group["world"])[bias]
        source: dict[str, Any] = {"names": [n for names in classes.values() for n in names]}
    else:
        source = {"file": group["file"], "column": group["column"]}
    if cfg.get("max_groups") is not None:
        source["max_groups"] = cfg["max_groups"]
    return source


def planted(config: dict) -> dict[str, dict[str, list[str]]] | None:
    """Ground truth per bias type when the groups come from a world dataset."""
    out = {}
    for bias, group in study(config)["groups"].items():
        if "world" in group:
            out[bias] = world_groups(config, group["world"])[bias]
    return out or None


def _bias(wildcards) -> str:
    bias = wildcards.bias
    if hasattr(wildcards, "template"):
        check_pairing(bias, wildcards.template, f"target with bias={bias} template={wildcards.template}")
    return bias


def group_file(config: dict, wildcards) -> list[str]:
    source = group_source(config, _bias(wildcards))
    return [source["file"]] if "file" in source else []


# --------------------------------------------------------------------------- models
def _check_ft(config: dict, ft: str) -> None:
    if ft != "base" and ft not in study(config)["finetunes"]:
        known = ", ".join(["base", *study(config)["finetunes"]])
        raise ValueError(f"unknown fine-tune {ft!r}; known: {known} (studies.circuits.finetunes)")


def model_inputs(config: dict, wildcards) -> list[str]:
    _check_ft(config, wildcards.ft)
    if wildcards.ft == "base":
        return bdc.model_inputs(config, wildcards.model)
    return [ft_model_dir(wildcards.model, wildcards.ft)]


def model_ref(config: dict, wildcards) -> dict[str, Any]:
    _check_ft(config, wildcards.ft)
    if wildcards.ft == "base":
        return bdc.model_ref(config, wildcards.model)
    path = ft_model_dir(wildcards.model, wildcards.ft)
    return {"alias": f"{wildcards.model}+{wildcards.ft}", "source": "path", "path": path, "trust_remote_code": False}


def base_model_inputs(config: dict, wildcards) -> list[str]:
    return bdc.model_inputs(config, wildcards.model)


# --------------------------------------------------------------------------- labels
def label_inputs(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    cfg = study(config)
    sentiment = cfg["sentiment"]
    files = [cfg["gender_terms"]]
    if sentiment["backend"] == "hf":
        files += bdc.model_inputs(config, sentiment["model"])
    else:
        files.append(sentiment["lexicon"])
    return files


def label_params(config: dict, wildcards=None) -> dict[str, Any]:  # noqa: ARG001
    """The labeling of the next tokens (jobs.Labeling): sentiment backend and its model ref,
    gender lexicon, top-k."""
    cfg = study(config)
    sentiment = dict(cfg["sentiment"])
    ref = bdc.model_ref(config, sentiment["model"]) if sentiment["backend"] == "hf" else None
    return {"sentiment": sentiment, "sentiment_model": ref, "gender_terms": cfg["gender_terms"], "top_k": cfg["top_k"]}


# --------------------------------------------------------------------------- stages
def prompt_file(bias: str, template: str, corruption: str) -> str:
    return f"{ROOT}/prompts/{bias}_{template}_{corruption}.csv"


def eval_prompt_files(config: dict, wildcards) -> list[str]:
    return [prompt_file(TEMPLATES[t].bias, t, wildcards.corruption) for t in study(config)["templates"]]


def split_file(model: str, bias: str, template: str, corruption: str, split: str) -> str:
    return f"{ROOT}/{model}/splits/{bias}_{template}_{corruption}_{split}.csv"


def eap_prompts(config: dict, wildcards) -> str:
    """The prompts EAP runs on: the configured split of the *base* model (the same prompt
    set for the base and every fine-tuned model), or all prompts."""
    bias = _bias(wildcards)
    choice = study(config)["eap"]["split"][bias]
    if choice == "all":
        return prompt_file(bias, wildcards.template, wildcards.corruption)
    return split_file(wildcards.model, bias, wildcards.template, wildcards.corruption, choice)


def finetune_spec(config: dict, wildcards) -> dict[str, Any]:
    _check_ft(config, wildcards.ft)
    if wildcards.ft == "base":
        raise ValueError("'base' is the model before fine-tuning; there is nothing to fine-tune")
    return study(config)["finetunes"][wildcards.ft]


def finetune_inputs(config: dict, wildcards) -> list[str]:
    spec = finetune_spec(config, wildcards)
    if spec["kind"] == "unrelated":
        return [bdc.dataset_file(spec["dataset"])]
    source = group_source(config, spec["bias"])
    return [source["file"]] if "file" in source else []


def compare_inputs(config: dict, wildcards) -> dict[str, str]:
    _bias(wildcards)
    _check_ft(config, wildcards.ft)
    run = {k: getattr(wildcards, k) for k in ("bias", "template", "corruption", "metric")}
    m = wildcards.model
    return {
        "base": f"{eap_dir(m, 'base', run)}/edge_scores.parquet",
        "tuned": f"{eap_dir(m, wildcards.ft, run)}/edge_scores.parquet",
        "base_results": f"{eap_dir(m, 'base', run)}/results.json",
        "tuned_results": f"{eap_dir(m, wildcards.ft, run)}/results.json",
        "base_bias": f"{ROOT}/{m}/base/bias/{wildcards.corruption}.parquet",
        "tuned_bias": f"{ROOT}/{m}/{wildcards.ft}/bias/{wildcards.corruption}.parquet",
        "prompts": eap_prompts(config, wildcards),
    }


def stability_inputs(config: dict, wildcards) -> list[str]:
    return [f"{eap_dir(wildcards.model, 'base', run)}/edge_scores.parquet" for run in runs(config)]


def summary_inputs(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    cfg = study(config)
    out = []
    for model in cfg["models"]:
        for ft in ["base", *cfg["finetunes"]]:
            out += [f"{ROOT}/{model}/{ft}/bias/{c}.parquet" for c in cfg["corruptions"]]
    return out


def comparison_jsons(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    cfg = study(config)
    return [
        f"{ROOT}/{model}/{ft}/compare/{run_name(run)}_finetuned_comparison.json"
        for model in cfg["models"]
        for ft in cfg["finetunes"]
        for run in listed_runs(config, "compare")
    ]


def ablation_csvs(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    cfg = study(config)
    return [
        f"{eap_dir(model, 'base', run)}/ablation.csv"
        for model in cfg["models"]
        for run in listed_runs(config, "ablation")
    ]


# --------------------------------------------------------------------------- stage params
# One function per rule, named like it: ``f(config, wildcards) -> dict``, the stage's whole
# params (the fields of its job dataclass in biasdrift.circuits.jobs; the rules file
# binds them with ``params: job=stage_params("circuits", "<rule>")``).
def _eap(config: dict) -> dict[str, Any]:
    """studies.circuits.eap without its per-bias split (jobs.EAPConfig)."""
    return {k: v for k, v in study(config)["eap"].items() if k != "split"}


def make_prompts(config: dict, wildcards) -> dict[str, Any]:
    return {
        "group_source": group_source(config, _bias(wildcards)),
        "underscores": study(config)["underscores"],
        "bias": wildcards.bias,
        "template": wildcards.template,
        "corruption": wildcards.corruption,
    }


def eval_bias(config: dict, wildcards) -> dict[str, Any]:
    eap = study(config)["eap"]
    return {
        "model": model_ref(config, wildcards),
        "labeling": label_params(config, wildcards),
        "batch_size": eap["batch_size"],
        "dtype": eap["dtype"],
        "runtime": config["runtime"],
        "seed": 0,
    }


def split_demographic(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"template": wildcards.template, "corruption": wildcards.corruption}


def split_gender(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"template": wildcards.template, "corruption": wildcards.corruption}


def _eap_run(config: dict, wildcards) -> dict[str, Any]:
    """What discover_circuit and ablate_circuit share: model, EAP settings, split, labeling."""
    bias = _bias(wildcards)
    return {
        "model": model_ref(config, wildcards),
        "eap": _eap(config),
        "split": study(config)["eap"]["split"][bias],
        "labeling": label_params(config, wildcards),
    }


def discover_circuit(config: dict, wildcards) -> dict[str, Any]:
    return {
        **_eap_run(config, wildcards),
        **{k: getattr(wildcards, k) for k in ("bias", "template", "corruption", "metric")},
        "runtime": config["runtime"],
        "seed": 0,
    }


def ablate_circuit(config: dict, wildcards) -> dict[str, Any]:
    ablation = study(config)["ablation"]
    return {
        **_eap_run(config, wildcards),
        "levels": ablation["levels"],
        "exact_check": ablation["exact_check"],
        "exact_check_max_edges": ablation["exact_check_max_edges"],
        "runtime": config["runtime"],
        "seed": 0,
    }


def finetune_circuits(config: dict, wildcards) -> dict[str, Any]:
    spec = finetune_spec(config, wildcards)
    positive = spec["kind"] == "positive_bias"
    return {
        "model": bdc.model_ref(config, wildcards.model),
        "ft": wildcards.ft,
        "kind": spec["kind"],
        "bias": spec.get("bias"),  # positive_bias only (no schema default)
        **{k: spec[k] for k in ("frames", "text_column", "max_examples", "valid_fraction", "max_length", "train")},
        "group_source": group_source(config, spec["bias"]) if positive else None,
        "underscores": study(config)["underscores"],
        "seed": spec["seed"],
        "runtime": config["runtime"],
        "scratch": f"{ROOT}/{wildcards.model}/{wildcards.ft}/.scratch/finetune_circuits",
    }


def compare_circuits(config: dict, wildcards) -> dict[str, Any]:
    bias = _bias(wildcards)
    cfg = study(config)
    fields = {
        "Base Model": wildcards.model,
        "Fine-tuned Model Path": model_ref(config, wildcards)["path"],
        "Fine-tune": wildcards.ft,
        "Bias Type": bias,
        "Sentence Template": display(wildcards.template),
        "Corruption": display(wildcards.corruption),
        "Metric": display(wildcards.metric),
    }
    return {"n_edges": cfg["compare"]["n_edges"], "ranking": cfg["eap"]["ranking"], "report_fields": fields}


def analyze_stability(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    cfg = study(config)
    return {"top_k": cfg["stability"]["top_k"], "ranking": cfg["eap"]["ranking"]}


def summarize_bias(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    cfg = study(config)
    return {
        "models": cfg["models"],
        "finetunes": ["base", *cfg["finetunes"]],
        "corruptions": cfg["corruptions"],
        "planted": planted(config),
        "bootstrap": cfg["bootstrap"],
    }


def discover_task_circuit(config: dict, wildcards) -> dict[str, Any]:
    task_file(config, wildcards)  # names an unknown task
    return {
        "model": model_ref(config, wildcards),
        "task_name": wildcards.task,
        "eap": _eap(config),  # no group split: a task has its own prompts
        "sizes": study(config)["tasks"][wildcards.task]["sizes"],
        "runtime": config["runtime"],
        "seed": 0,
    }


def plot_circuits_bias(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {}


def plot_circuits_comparisons(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {}


def plot_circuits_stability(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"model": wildcards.model}


def plot_circuits_ablation(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {}


# --------------------------------------------------------------------------- matrix registry
def matrix_models(config: dict) -> list[dict[str, Any]]:
    """The cross-study matrix's rows: every circuits model and each of its fine-tunes."""
    from biasdrift.matrix.registry import alias_row, model_row, path_ref

    cfg = study(config)
    out = []
    for model in cfg["models"]:
        out.append(alias_row(config, model, "circuits"))
        for ft in cfg.get("finetunes") or {}:
            name = f"{model}.{ft}"
            path = ft_model_dir(model, ft)
            label = f"{model} {ft} fine-tune"
            out.append(model_row(name, "circuits", model=path_ref(name, path), inputs=[path], base=model, label=label))
    return out


def matrix_probes(config: dict) -> list[dict[str, Any]]:
    """The matrix's circuits probes, on the groups a world planted (none when the groups
    come from files: those carry no ground truth of which group is which): sentiment
    (positive vs negative words after each nationality's frames) and gender (he/him vs
    she/her after each profession's frames)."""
    from biasdrift.circuits.generators import (
        DEMOGRAPHIC_FRAMES,
        GENDER_FRAMES,
        NEGATIVE_WORDS,
        POSITIVE_WORDS,
        PRONOUNS,
    )
    from biasdrift.matrix.registry import contrast_probe

    truth = planted(config) or {}
    out = []
    options = {
        "{word}": (list(POSITIVE_WORDS), list(NEGATIVE_WORDS)),
        "{subj}": ([PRONOUNS["male"]["subj"]], [PRONOUNS["female"]["subj"]]),
        "{obj}": ([PRONOUNS["male"]["obj"]], [PRONOUNS["female"]["obj"]]),
    }

    def items(frames, groups_a, groups_b):
        rows = []
        for k, frame in enumerate(frames):  # a frame is a block: its items differ only in the group
            slot = min((frame.find(s), s) for s in options if s in frame)[1]
            prefix = frame[: frame.find(slot)].rstrip()
            a, b = options[slot]
            for group, names in (("a", groups_a), ("b", groups_b)):
                rows += [{"prompt": prefix.format(group=n), "group": group, "block": k, "a": a, "b": b} for n in names]
        return rows

    if "demographic" in truth:
        d = truth["demographic"]
        out.append(
            contrast_probe(
                "circuits-sentiment",
                "circuits",
                items=items(DEMOGRAPHIC_FRAMES, d["positive"], d["negative"]),
                groups={"a": "nationalities planted positive", "b": "nationalities planted negative"},
                description="log P(positive word) - log P(negative word) after a nationality: gap between "
                "the groups the world planted positive and negative (0: no sentiment bias)",
                needs=["words"],
            )
        )
    if "gender" in truth:
        g = truth["gender"]
        out.append(
            contrast_probe(
                "circuits-gender",
                "circuits",
                items=items(GENDER_FRAMES, g["male"], g["female"]),
                groups={"a": "professions planted male", "b": "professions planted female"},
                description="log P(he/him) - log P(she/her) after a profession: gap between the professions "
                "the world planted male and female (0: no gender bias)",
                needs=["words"],
            )
        )
    return out
