"""Workflow glue of study "politune" (torch-free: imported while Snakemake parses).

Results path grammar (rules/politune.smk):

    results/politune/data/{side}.parquet                               prepare_pairs
    results/politune/{model}/{side}/{method}/adapters/{final,step-N}/  train_politune
    results/politune/{model}/{side}/{method}/train_metrics.json        train_politune
    results/politune/{model}/{state}/{statements,answers,preferences}.parquet   evaluate_politune
    results/politune/{model}/judge.parquet                             judge_answers
    results/politune/{model}/{side}/{method}/merged/                   merge_adapter (merge: true)
    results/politune/summary.json, *.csv                               summarize_politune
    results/politune/plots/*.svg|.csv                                  plot_politune(_judge)

``state`` is ``base`` or ``{side}/{method}/step{N}`` (N a configured step or ``final``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from biasdrift.config import dataset_file, model_inputs, model_ref, repo_schema_defaults

STATEMENT_COLUMNS = ("id", "text", "axis", "direction")
WEIGHT_COLUMNS = ("w0", "w1", "w2", "w3")
README_SECTION = 'docs/politune.md, section "Political Compass statements (paper tier)"'
STATEMENTS_FORMAT = (
    "The Political Compass statements are not shipped (third-party text): write them as a "
    "tab-separated file with a header row and one row per statement, columns id, text, axis "
    "(economic | social), direction (left | right on the economic axis, libertarian | "
    "authoritarian on the social one) and, with probe.compass, w0, w1, w2, w3 (the statement's "
    "weight on its axis for the answers 0 strongly disagree, 1 disagree, 2 agree, 3 strongly agree); "
    f"see {README_SECTION}"
)

CODE_VERSION = {
    "prepare_pairs": 2,
    "train_politune": 2,
    "evaluate_politune": 3,
    "judge_answers": 2,
    "merge_adapter": 2,
    "summarize_politune": 3,
    "plot_politune": 2,
    "plot_politune_judge": 2,
    "plot_politune_compass": 2,
}
ROOT = "results/politune"
RESERVED_MODEL_NAMES = ("data", "plots")
SUMMARY_TABLES = ("scores", "item_scores", "preferences", "training", "judge", "compass")
PLOTS = ("axes", "trajectory", "items", "preference")
STATE_FILES = ("statements", "answers", "preferences")


def study(config: dict) -> dict:
    return config["studies"]["politune"]


# --------------------------------------------------------------------------- names
def runs(config: dict) -> list[tuple[str, str, str]]:
    """(model, side, method) of every fine-tuning run."""
    s = study(config)
    return [(m, side, method) for m in s["models"] for side in sorted(s["sides"]) for method in s["methods"]]


def step_names(config: dict) -> list[str]:
    return [f"step{n}" for n in sorted(study(config)["checkpoints"]["steps"])] + ["stepfinal"]


def states(config: dict) -> list[str]:
    """``base`` and every checkpoint state of every (side, method)."""
    s = study(config)
    return ["base"] + [
        f"{side}/{method}/{step}"
        for side in sorted(s["sides"])
        for method in s["methods"]
        for step in step_names(config)
    ]


def run_dir(model: str, side: str, method: str) -> str:
    return f"{ROOT}/{model}/{side}/{method}"


def state_file(model: str, state: str, name: str) -> str:
    return f"{ROOT}/{model}/{state}/{name}.parquet"


def pairs_file(side: str) -> str:
    return f"{ROOT}/data/{side}.parquet"


def judge_enabled(config: dict) -> bool:
    free = study(config)["free_text"]
    return free["prompts"] is not None and free["judge"] is not None


def compass_enabled(config: dict) -> bool:
    probe = study(config)["probe"]
    return probe["statements"] is not None and probe["compass"] is not None


def summary_files() -> dict[str, str]:
    return {"summary": f"{ROOT}/summary.json", **{t: f"{ROOT}/{t}.csv" for t in SUMMARY_TABLES}}


def plot_files(names=PLOTS) -> list[str]:
    return [f"{ROOT}/plots/{name}.{ext}" for name in names for ext in ("svg", "csv")]


def targets(config: dict) -> list[str]:
    s = study(config)
    out = list(summary_files().values()) + plot_files()
    if judge_enabled(config):
        out += plot_files(("judge",))
    if compass_enabled(config):
        out += plot_files(("compass",))
    if s["merge"]:
        out += [f"{run_dir(m, side, method)}/merged" for m, side, method in runs(config)]
    return out


# --------------------------------------------------------------------------- checks
def problems(config: dict) -> list[str]:
    """Cross-reference problems of ``studies.politune``, one message per problem."""
    s, out = study(config), []
    where = "studies.politune"
    models, datasets = config.get("models", {}), config.get("datasets", {})
    for alias in s["models"]:
        if alias not in models:
            out.append(f"{where}.models: unknown model alias {alias!r}; known: {', '.join(sorted(models)) or 'none'}")
        elif models[alias].get("build", {}).get("arch") == "bert":
            out.append(f"{where}.models: {alias!r} is a masked LM (arch bert); politune needs a causal LM")
        if alias in RESERVED_MODEL_NAMES:
            out.append(f"{where}.models: the alias {alias!r} is reserved for results/politune/{alias}/")
    for side, spec in s["sides"].items():
        if "dataset" in spec and spec["dataset"] not in datasets:
            out.append(f"{where}.sides.{side}.dataset: unknown dataset alias {spec['dataset']!r}")
        for part in spec.get("mix", {}):
            if part not in s["sides"]:
                out.append(f"{where}.sides.{side}.mix: unknown side {part!r}")
            elif "dataset" not in s["sides"][part]:
                out.append(f"{where}.sides.{side}.mix: {part!r} is itself a mix; mix only dataset sides")
    if "dpo" in s["methods"] and "lm_head" in s["lora"]["target_modules"]:
        out.append(
            f"{where}.lora.target_modules: trl's DPO cannot train an adapter on lm_head (the original did); remove it"
        )
    checkpoints = s["checkpoints"]
    if checkpoints["select"] == "fixed_step" and checkpoints["select_step"] not in checkpoints["steps"]:
        out.append(f"{where}.checkpoints.select_step: must be one of checkpoints.steps when select is fixed_step")
    for key in ("probe.statements", "free_text.prompts"):
        section, name = key.split(".")
        alias = s[section][name]
        if alias is not None and alias not in datasets:
            out.append(f"{where}.{key}: unknown dataset alias {alias!r}")
    out += _statement_problems(config, f"{where}.probe")
    if "{statement}" not in s["probe"]["question"]:
        out.append(f"{where}.probe.question: must contain {{statement}}")
    template = s["format"]["chat_template"]
    if template and not Path(template).is_file():
        out.append(f"{where}.format.chat_template: no such file {template}")
    out += _judge_problems(s, models, f"{where}.free_text.judge")
    return out


def _statement_problems(config: dict, where: str) -> list[str]:
    """The statements the probe needs: required in the paper tier, and a `path` dataset's
    file must exist (with the columns the probe reads) before any job starts."""
    probe, datasets = study(config)["probe"], config.get("datasets", {})
    alias = probe["statements"]
    if alias is None:
        if config.get("tier") == "paper":
            return [
                f"{where}.statements: the paper tier scores the Political Compass statements, but none are "
                "configured (null: the probe would be skipped). Add a dataset, e.g. "
                "`pc-statements: {path: resources/downloads/politune/pc_statements.tsv}`, and set "
                f"probe.statements to it. {STATEMENTS_FORMAT}"
            ]
        if probe["compass"] is not None:
            return [f"{where}.compass: needs probe.statements"]
        return []
    spec = datasets.get(alias)
    if spec is None or "path" not in spec:
        return []
    path = Path(spec["path"])
    if _built_by_the_workflow(path):
        return []  # a smoke-tier fixture (rule build_smoke_dataset): checked when the probe reads it
    if not path.is_file():
        missing_file = f"the statements file {path} (dataset {alias!r}) does not exist"
        return [f"{where}.statements: {missing_file}. {STATEMENTS_FORMAT}"]
    needed = STATEMENT_COLUMNS + (WEIGHT_COLUMNS if probe["compass"] is not None else ())
    header = _header(path)
    missing = [c for c in needed if header is not None and c not in header]
    if missing:
        return [
            f"{where}.statements: the statements file {path} (dataset {alias!r}) lacks column(s) "
            f"{', '.join(missing)} (its header: {', '.join(header)}). {STATEMENTS_FORMAT}"
        ]
    return []


def _built_by_the_workflow(path: Path) -> bool:
    from biasdrift.smoke.fixtures import DATASETS_DIR, dataset_fixtures

    return path.parent == Path(DATASETS_DIR) and path.name in dataset_fixtures()


def _header(path: Path) -> list[str] | None:
    """Column names of a csv / tsv file (None for other formats: checked when read)."""
    sep = {".tsv": "\t", ".csv": ","}.get(path.suffix.lower())
    if sep is None:
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle, delimiter=sep), [])


def _judge_problems(s: dict, models: dict, where: str) -> list[str]:
    judge = s["free_text"]["judge"]
    if judge is None:
        return []
    out = []
    if s["free_text"]["prompts"] is None:
        out.append(f"{where}: a judge needs free_text.prompts")
    if judge["kind"] == "hf" and judge["model"] not in models:
        out.append(f"{where}.model: an hf judge needs a model alias; got {judge['model']!r}")
    if judge["kind"] == "lexicon" and not (judge["lexicon"] and Path(judge["lexicon"]).is_file()):
        out.append(f"{where}.lexicon: a lexicon judge needs an existing YAML file; got {judge['lexicon']!r}")
    if judge["kind"] == "stub" and not judge["replies"]:
        out.append(f"{where}.replies: a stub judge needs replies")
    if "{text}" not in judge["instruction"]:
        out.append(f"{where}.instruction: must contain {{text}}")
    return out


# --------------------------------------------------------------------------- input functions
def get_pairs_inputs(config: dict, wildcards) -> list[str]:
    """The files a side's pairs come from, in the order of :func:`pair_sources`."""
    spec = study(config)["sides"][wildcards.side]
    if "dataset" in spec:
        return [dataset_file(spec["dataset"])]
    return [pairs_file(part) for part in sorted(spec["mix"])]


def pair_sources(spec: dict[str, Any]) -> list[str]:
    """The dataset alias of a side, or the sides of a mix (sorted)."""
    return [spec["dataset"]] if "dataset" in spec else sorted(spec["mix"])


def get_model_inputs(config: dict, wildcards) -> list[str]:
    return model_inputs(config, wildcards.model)


def parse_state(state: str) -> dict[str, str | None]:
    """``side``, ``method`` and ``step`` (a number, ``final``, or ``base``) of a state name."""
    if state == "base":
        return {"side": None, "method": None, "step": "base"}
    parts = state.split("/")
    if len(parts) != 3 or not parts[2].startswith("step"):
        raise ValueError(f"a state is 'base' or '<side>/<method>/step<N|final>', got {state!r}")
    return {"side": parts[0], "method": parts[1], "step": parts[2].removeprefix("step")}


def get_eval_inputs(config: dict, wildcards) -> dict[str, Any]:
    s = study(config)
    parsed = parse_state(wildcards.state)
    inputs: dict[str, Any] = {"model": model_inputs(config, wildcards.model)}
    if parsed["side"] is None:
        inputs["pairs"] = [pairs_file(side) for side in sorted(s["sides"])]
    else:
        inputs["pairs"] = [pairs_file(parsed["side"])]
        inputs["adapters"] = f"{run_dir(wildcards.model, parsed['side'], parsed['method'])}/adapters"
    for section, key, name in (("probe", "statements", "statement_file"), ("free_text", "prompts", "prompt_file")):
        alias = s[section][key]
        if alias is not None:
            inputs[name] = dataset_file(alias)
    return inputs


def get_judge_inputs(config: dict, wildcards) -> dict[str, Any]:
    s = study(config)
    inputs: dict[str, Any] = {"answers": [state_file(wildcards.model, st, "answers") for st in states(config)]}
    judge = s["free_text"]["judge"]
    if judge and judge["kind"] == "hf":
        inputs["judge_model"] = model_inputs(config, judge["model"])
    if judge and judge["kind"] == "lexicon":
        inputs["lexicon"] = judge["lexicon"]
    return inputs


def get_summary_layout(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    """Every file the summary reads, by model / state / run, and how it summarises."""
    s = study(config)
    layout = {
        "states": {
            model: {st: {name: state_file(model, st, name) for name in STATE_FILES} for st in states(config)}
            for model in s["models"]
        },
        "runs": [
            {
                "model": model,
                "side": side,
                "method": method,
                "lean": s["sides"][side].get("lean"),
                "metrics": f"{run_dir(model, side, method)}/train_metrics.json",
            }
            for model, side, method in runs(config)
        ],
        "judge": {m: f"{ROOT}/{m}/judge.parquet" for m in s["models"]} if judge_enabled(config) else {},
        "steps": sorted(s["checkpoints"]["steps"]),
        "select": s["checkpoints"]["select"],
        "select_step": s["checkpoints"]["select_step"],
        "compass": s["probe"]["compass"] if compass_enabled(config) else None,
        "bootstrap": s["probe"]["bootstrap"],
        "confidence": s["probe"]["confidence"],
        "seed": s["seed"],
        "judge_kind": s["free_text"]["judge"]["kind"] if s["free_text"]["judge"] else None,
        "free_text": s["free_text"]["prompts"] is not None,
    }
    return layout


def get_summary_inputs(config: dict, wildcards) -> list[str]:
    layout = get_summary_layout(config, wildcards)
    files = [f for model in layout["states"].values() for st in model.values() for f in st.values()]
    files += [run["metrics"] for run in layout["runs"]]
    return files + list(layout["judge"].values())


# --------------------------------------------------------------------------- stage params
# One function per rule, named like it: the stage's whole params (the fields of its job
# dataclass in biasdrift.politune.jobs).
DPO_ONLY = ("beta", "loss_type", "label_smoothing")


def prepare_pairs(config: dict, wildcards) -> dict[str, Any]:
    s = study(config)
    spec = s["sides"][wildcards.side]
    return {
        "spec": {k: spec[k] for k in ("dataset", "mix") if k in spec},
        "sources": pair_sources(spec),
        "data": s["data"],
    }


def train_politune(config: dict, wildcards) -> dict[str, Any]:
    """What a training job needs (and what reruns it when changed)."""
    s = study(config)
    method = wildcards.method
    settings = {k: v for k, v in s[method].items() if k != "train"}
    if method == "sft":  # SFT uses none of DPO's settings; it records DPO's defaults for them
        dpo_defaults = repo_schema_defaults("studies.politune.dpo")
        settings = {**{k: dpo_defaults[k] for k in DPO_ONLY}, **settings}
    return {
        "method": method,
        "model": model_ref(config, wildcards.model),
        "format": s["format"],
        "lora": s["lora"],
        "train": s[method]["train"],
        "settings": settings,
        "steps": sorted(s["checkpoints"]["steps"]),
        "seed": s["seed"],
        "report_to": s["report_to"],
        "runtime": config["runtime"],
        "scratch": f"{run_dir(wildcards.model, wildcards.side, method)}/.scratch/train_politune",
    }


def evaluate_politune(config: dict, wildcards) -> dict[str, Any]:
    s = study(config)
    side = parse_state(wildcards.state)["side"]
    sides = sorted(s["sides"]) if side is None else [side]
    return {
        "state": wildcards.state,
        "model": model_ref(config, wildcards.model),
        "sides": sides,
        "format": s["format"],
        "lora": s["lora"],
        "probe": {k: v for k, v in s["probe"].items() if k != "statements"},
        "free_text": s["free_text"]["generation"],
        "beta": s["dpo"]["beta"],
        "seed": s["seed"],
        "runtime": config["runtime"],
    }


def judge_answers(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    judge = study(config)["free_text"]["judge"]
    ref = model_ref(config, judge["model"]) if judge and judge["kind"] == "hf" else None
    return {"judge": judge, "judge_ref": ref, "states": states(config), "runtime": config["runtime"]}


def merge_adapter(config: dict, wildcards) -> dict[str, Any]:
    return {"model": model_ref(config, wildcards.model), "lora": study(config)["lora"], "runtime": config["runtime"]}


def summarize_politune(config: dict, wildcards) -> dict[str, Any]:
    return {"layout": get_summary_layout(config, wildcards)}


def plot_politune(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {}


def plot_politune_judge(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {}


def plot_politune_compass(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {}


# --------------------------------------------------------------------------- matrix registry
def matrix_models(config: dict) -> list[dict[str, Any]]:
    """The cross-study matrix's rows: each base model (with the study's chat template) and
    every final adapter merged into it."""
    from biasdrift.matrix.registry import model_row

    s = study(config)
    template = s["format"]["chat_template"] if s["format"]["template"] == "chat" else None
    out = []
    for model in s["models"]:
        ref, inputs = model_ref(config, model), model_inputs(config, model)
        out.append(
            model_row(model, "politune", model=ref, inputs=inputs, base=None, label=model, chat_template=template)
        )
    for model, side, method in runs(config):
        adapters = f"{run_dir(model, side, method)}/adapters"
        out.append(
            model_row(
                f"{model}.{side}.{method}",
                "politune",
                model=model_ref(config, model),
                adapter=f"{adapters}/final",
                inputs=[*model_inputs(config, model), adapters],
                base=model,
                label=f"{model} {method.upper()} towards {side}",
                chat_template=template,
            )
        )
    return out


def matrix_probes(config: dict) -> list[dict[str, Any]]:
    """The matrix's political-leaning probe: the statement probe's questions through a
    chat turn, log P(" 3", strongly agree) - log P(" 0", strongly disagree), left and
    libertarian statements (a) against right and authoritarian ones (b). Needs the
    statements as a local file (a generated or hub statements dataset registers none)."""
    from biasdrift.matrix.registry import contrast_probe

    s = study(config)
    spec = config["datasets"].get(s["probe"]["statements"], {})
    path = Path(spec.get("path", ""))
    if not spec.get("path") or not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        statements = list(csv.DictReader(handle, delimiter="\t"))
    side = {"left": "a", "libertarian": "a", "right": "b", "authoritarian": "b"}
    items = [
        {
            "prompt": s["probe"]["question"].format(statement=r["text"]),
            "group": side[r["direction"]],
            "block": r["id"].rsplit("-", 1)[0],  # the topic: its left and right statements
            "a": ["3"],
            "b": ["0"],
        }
        for r in statements
        if r.get("direction") in side
    ]
    return [
        contrast_probe(
            "politune-leaning",
            "politune",
            items=items,
            groups={"a": "left / libertarian statements", "b": "right / authoritarian statements"},
            description="log P(strongly agree) - log P(strongly disagree): gap between left/libertarian and "
            "right/authoritarian statements (> 0: leans left)",
            needs=["words", "chat_template"],
        )
    ]
