"""Workflow glue of study "specdec" (torch-free: imported while Snakemake parses).

Results path grammar (rules/specdec.smk; logs/ and benchmarks/ mirror it):

    results/specdec/templates/templates.parquet                     prepare_specdec_templates
    results/specdec/finetune/{role}/model|epochs|milestones/        finetune_specdec_model (role: main, assistant)
    results/specdec/kl/{condition}.parquet                          measure_specdec_kl
    results/specdec/kl/curve.csv                                    curve_specdec_kl
    results/specdec/decode/{condition}/{view}/k{k}_n{n}.parquet     measure_specdec_acceptance
    results/specdec/toxicity/{view}/n{n}/scores.parquet|*.csv       score_specdec_toxicity
    results/specdec/stats/{view}/k{k}_n{n}/*.csv                    summarize_specdec_disparity
    results/specdec/sample/{condition}/{view}/k{k}_n{n}.parquet     sample_specdec_acceptance
    results/specdec/sample/{view}/k{k}_n{n}/acceptance.csv          summarize_specdec_sampling
    results/specdec/plots/...                                       plot_specdec_*

Glue: one function per rule, named like it, ``f(config, wildcards) -> dict``, the stage's
whole params (the fields of its job dataclass in :mod:`biasdrift.specdec.jobs`); the
other functions are the rules' input functions and their helpers.
"""

from __future__ import annotations

import re
from typing import Any

from biasdrift import config as bdc

CODE_VERSION = {
    "prepare_specdec_templates": 2,
    "finetune_specdec_model": 2,
    "measure_specdec_kl": 2,
    "curve_specdec_kl": 2,
    "measure_specdec_acceptance": 2,
    "score_specdec_toxicity": 2,
    "summarize_specdec_disparity": 2,
    "sample_specdec_acceptance": 2,
    "summarize_specdec_sampling": 2,
    "plot_specdec_disparity": 2,
    "plot_specdec_kl_curve": 2,
    "plot_specdec_toxicity": 2,
    "plot_specdec_sampling": 2,
}

ROLES = ("main", "assistant")
VIEWS = ("clean_binary", "legacy_all")
CAUSAL_ARCHS = ("gpt2", "llama")
EPOCH_RE = re.compile(r"^epoch([1-9][0-9]*)$")
TEMPLATES = "results/specdec/templates/templates.parquet"
STATS_FILES = ("group_summary", "identity_means", "disparity", "did", "spread")
DISPARITY_PLOTS = ("share_by_category", "share_by_identity", "disparity_forest", "kl_vs_share")


def study(config: dict) -> dict:
    return config["studies"]["specdec"]


# --------------------------------------------------------------------------- paths
def finetune_dir(role: str) -> str:
    return f"results/specdec/finetune/{role}"


def decode_path(condition: str, view: str, k: int, n: int) -> str:
    return f"results/specdec/decode/{condition}/{view}/k{k}_n{n}.parquet"


def kl_path(condition: str) -> str:
    return f"results/specdec/kl/{condition}.parquet"


def sample_path(condition: str, view: str, k: int, n: int) -> str:
    return f"results/specdec/sample/{condition}/{view}/k{k}_n{n}.parquet"


def sampling_summary_path(view: str, k: int, n: int) -> str:
    return f"results/specdec/sample/{view}/k{k}_n{n}/acceptance.csv"


def stats_path(view: str, k: int, n: int, name: str) -> str:
    return f"results/specdec/stats/{view}/k{k}_n{n}/{name}.csv"


def toxicity_path(view: str, n: int, name: str) -> str:
    return f"results/specdec/toxicity/{view}/n{n}/{name}"


def targets(config: dict) -> list[str]:
    s = study(config)
    out = ["results/specdec/kl/curve.csv", "results/specdec/plots/kl_curve.svg", "results/specdec/plots/kl_curve.csv"]
    for view in s["views"]:
        for n in s["decode"]["n"]:
            out += [toxicity_path(view, n, f) for f in ("scores.parquet", "summary.csv", "transitions.csv")]
            out += [f"results/specdec/plots/{view}/n{n}/toxicity.{ext}" for ext in ("svg", "csv")]
            for k in s["decode"]["k"]:
                out += [stats_path(view, k, n, name) for name in STATS_FILES]
                if s["sampling"]["conditions"]:
                    out.append(sampling_summary_path(view, k, n))
                    out += [f"results/specdec/plots/{view}/k{k}_n{n}/sampling.{ext}" for ext in ("svg", "csv")]
                out += [
                    f"results/specdec/plots/{view}/k{k}_n{n}/{p}.{ext}"
                    for p in DISPARITY_PLOTS
                    for ext in ("svg", "csv")
                ]
    return out


def wildcard_patterns(config: dict) -> dict[str, str]:
    """Regexes of this study's wildcards (conditions are config keys)."""
    conditions = sorted(study(config)["conditions"]) if "specdec" in config.get("studies", {}) else []
    names = sorted(conditions, key=len, reverse=True)
    return {
        "condition": "|".join(re.escape(c) for c in names) if names else "(?!)",
        "view": "|".join(VIEWS),
        "role": "|".join(ROLES),
    }


# --------------------------------------------------------------------------- checks
def _unknown(where: str, kind: str, alias: str, known: dict) -> str:
    return f"{where}: unknown {kind} alias {alias!r}; known: {', '.join(sorted(known)) or 'none'}"


def problems(config: dict) -> list[str]:
    """Cross references the schema cannot express, one message per problem."""
    s = study(config)
    where = "studies.specdec"
    out: list[str] = []
    models, datasets = config.get("models", {}), config.get("datasets", {})
    for role in ROLES:
        alias = s[role]
        if alias not in models:
            out.append(_unknown(f"{where}.{role}", "model", alias, models))
            continue
        build = models[alias].get("build")
        if build and build["arch"] not in CAUSAL_ARCHS:
            out.append(
                f"{where}.{role}: model {alias!r} is a {build['arch']} (masked LM); speculative decoding needs "
                f"a causal LM ({', '.join(CAUSAL_ARCHS)})"
            )
    main, assistant = models.get(s["main"], {}).get("build"), models.get(s["assistant"], {}).get("build")
    if main and assistant and main["tokenizer"] != assistant["tokenizer"]:
        out.append(
            f"{where}.assistant: model {s['assistant']!r} uses tokenizer {assistant['tokenizer']!r} but the main model "
            f"{s['main']!r} uses {main['tokenizer']!r}; main and assistant must share one tokenizer"
        )
    for i, alias in enumerate(s["templates"]):
        if alias not in datasets:
            out.append(_unknown(f"{where}.templates[{i}]", "dataset", alias, datasets))
    corpus = s["finetune_data"]["dataset"]
    if corpus not in datasets:
        out.append(_unknown(f"{where}.finetune_data.dataset", "dataset", corpus, datasets))
    missing = [c for c in s["contrast"] if c not in s["categories"]]
    if missing:
        out.append(f"{where}.contrast: {missing} not among categories {s['categories']}")
    if s["reference_condition"] not in s["conditions"]:
        out.append(
            f"{where}.reference_condition: {s['reference_condition']!r} is not a condition; "
            f"conditions: {', '.join(sorted(s['conditions']))}"
        )
    if s["finetune"].get("early_stopping_patience"):
        out.append(
            f"{where}.finetune.early_stopping_patience: must be null (reloading the best checkpoint would "
            "replace the weights of the last epoch)"
        )
    out += _condition_problems(s, where)
    for i, condition in enumerate(s["sampling"]["conditions"]):
        if condition not in s["conditions"]:
            out.append(_unknown(f"{where}.sampling.conditions[{i}]", "condition", condition, s["conditions"]))
    tox = s["toxicity"]
    if tox["scorer"] == "classifier":
        if not tox["classifier"]:
            out.append(f"{where}.toxicity.classifier: scorer 'classifier' needs a model alias")
        elif tox["classifier"] not in models:
            out.append(_unknown(f"{where}.toxicity.classifier", "model", tox["classifier"], models))
    elif not tox["lexicon"]:  # a missing file is a missing input of score_specdec_toxicity
        out.append(f"{where}.toxicity.lexicon: scorer 'lexicon' needs a lexicon file")
    return out


def _condition_problems(s: dict, where: str) -> list[str]:
    """epoch<k> states need saved epoch models and at most ``finetune.epochs`` epochs."""
    out = []
    epochs = s["finetune"]["epochs"] if s["finetune"]["max_steps"] == -1 else None
    for name, cond in sorted(s["conditions"].items()):
        for role in ROLES:
            match = EPOCH_RE.match(cond[role])
            if not match:
                continue
            key = f"{where}.conditions.{name}.{role}"
            if not s["milestones"]["save_epoch_models"]:
                out.append(f"{key}: state {cond[role]!r} needs milestones.save_epoch_models: true")
            elif epochs is not None and int(match.group(1)) > epochs:
                out.append(f"{key}: {cond[role]!r} but finetune.epochs is {epochs}")
    return out


# --------------------------------------------------------------------------- templates
def template_files(config: dict, wildcards: Any) -> list[str]:  # noqa: ARG001
    return [bdc.dataset_file(a) for a in study(config)["templates"]]


# --------------------------------------------------------------------------- models
def _role_alias(config: dict, role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    return study(config)[role]


def role_model_inputs(config: dict, wildcards: Any) -> list[str]:
    return bdc.model_inputs(config, _role_alias(config, wildcards.role))


def finetune_corpus(config: dict, wildcards: Any) -> str:  # noqa: ARG001
    return bdc.dataset_file(study(config)["finetune_data"]["dataset"])


def state_spec(config: dict, role: str, state: str) -> dict[str, Any]:
    """Model ref and input files of one role in one state (base, base_bf16, ft, epoch<k>)."""
    alias = _role_alias(config, role)
    base = bdc.model_ref(config, alias)
    if state in ("base", "base_bf16"):
        return {"role": role, "alias": alias, "state": state, "ref": base, "inputs": bdc.model_inputs(config, alias)}
    if state == "ft":
        path, inputs = f"{finetune_dir(role)}/model", [f"{finetune_dir(role)}/model"]
    elif EPOCH_RE.match(state):
        path, inputs = (
            f"{finetune_dir(role)}/epochs/epoch_{EPOCH_RE.match(state).group(1)}",
            [f"{finetune_dir(role)}/epochs"],
        )
    else:
        raise ValueError(f"unknown model state {state!r} (base, base_bf16, ft, epoch<k>)")
    ref = {"alias": alias, "source": "path", "path": path, "trust_remote_code": base["trust_remote_code"]}
    return {"role": role, "alias": alias, "state": state, "ref": ref, "inputs": inputs}


def pair_of(config: dict, condition: str) -> dict[str, Any]:
    conditions = study(config)["conditions"]
    if condition not in conditions:
        raise bdc.ConfigError(
            [f"studies.specdec.conditions: no condition {condition!r}; known: {', '.join(sorted(conditions))}"]
        )
    specs = {role: state_spec(config, role, conditions[condition][role]) for role in ROLES}
    return {
        "condition": condition,
        **{role: {k: v for k, v in spec.items() if k != "inputs"} for role, spec in specs.items()},
    }


def _pair_inputs(config: dict, condition: str) -> list[str]:
    conditions = study(config)["conditions"]
    return sorted({f for role in ROLES for f in state_spec(config, role, conditions[condition][role])["inputs"]})


def condition_inputs(config: dict, wildcards: Any) -> list[str]:
    return _pair_inputs(config, wildcards.condition)


def sample_map(config: dict, wildcards: Any) -> dict[str, str]:
    k, n = int(wildcards.k), int(wildcards.n)
    return {c: sample_path(c, wildcards.view, k, n) for c in sorted(study(config)["sampling"]["conditions"])}


def sample_inputs(config: dict, wildcards: Any) -> list[str]:
    return sorted(sample_map(config, wildcards).values())


# --------------------------------------------------------------------------- aggregation
def _conditions(config: dict) -> list[str]:
    return sorted(study(config)["conditions"])


def decode_map(config: dict, wildcards: Any) -> dict[str, str]:
    return {c: decode_path(c, wildcards.view, int(wildcards.k), int(wildcards.n)) for c in _conditions(config)}


def decode_inputs(config: dict, wildcards: Any) -> list[str]:
    return sorted(decode_map(config, wildcards).values())


def kl_map(config: dict, wildcards: Any) -> dict[str, str]:  # noqa: ARG001
    return {c: kl_path(c) for c in _conditions(config)}


def kl_inputs(config: dict, wildcards: Any) -> list[str]:
    return sorted(kl_map(config, wildcards).values())


def toxicity_k(config: dict) -> int:
    """Completions do not depend on K (greedy output); toxicity reads the smallest K's run."""
    return min(study(config)["decode"]["k"])


def toxicity_decode_map(config: dict, wildcards: Any) -> dict[str, str]:
    return {c: decode_path(c, wildcards.view, toxicity_k(config), int(wildcards.n)) for c in _conditions(config)}


def toxicity_inputs(config: dict, wildcards: Any) -> list[str]:
    s = study(config)
    files = set(toxicity_decode_map(config, wildcards).values())
    for condition in _conditions(config):
        files |= set(state_spec(config, "assistant", s["conditions"][condition]["assistant"])["inputs"])
    tox = s["toxicity"]
    if tox["scorer"] == "classifier":
        files |= set(bdc.model_inputs(config, tox["classifier"]))
    else:
        files.add(tox["lexicon"])
    return sorted(files)


# --------------------------------------------------------------------------- stages
def prepare_specdec_templates(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    s = study(config)
    keys = ("categories", "contrast", "neutral_identities", "max_per_category", "seed")
    return {"aliases": list(s["templates"]), "templates": {k: s[k] for k in keys}}


def finetune_specdec_model(config: dict, wildcards: Any) -> dict[str, Any]:
    s, role = study(config), wildcards.role
    return {
        "role": role,
        "model": bdc.model_ref(config, _role_alias(config, role)),
        "data": s["finetune_data"],
        "train": s["finetune"],
        "milestones": s["milestones"],
        "seed": s["seed"],
        "runtime": config["runtime"],
        "scratch": f"{finetune_dir(role)}/.scratch/finetune_specdec_model",
    }


def measure_specdec_kl(config: dict, wildcards: Any) -> dict[str, Any]:
    return {"pair": pair_of(config, wildcards.condition), "seed": 0, "runtime": config["runtime"]}


def curve_specdec_kl(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    s = study(config)
    return {"views": list(s["views"]), "stats": s["stats"]}


def measure_specdec_acceptance(config: dict, wildcards: Any) -> dict[str, Any]:
    """K and N come from the wildcards (so adding a value to decode.k or decode.n reruns
    nothing that exists)."""
    d = study(config)["decode"]
    return {
        "pair": pair_of(config, wildcards.condition),
        "view": wildcards.view,
        "decode": {**{k: v for k, v in d.items() if k not in ("k", "n")}, "k": int(wildcards.k), "n": int(wildcards.n)},
        "seed": 0,
        "runtime": config["runtime"],
    }


def score_specdec_toxicity(config: dict, wildcards: Any) -> dict[str, Any]:
    s = study(config)
    tox = s["toxicity"]
    return {
        "decode_paths": toxicity_decode_map(config, wildcards),
        "pairs": {c: pair_of(config, c) for c in _conditions(config)},
        "toxicity": {**tox, "ci": s["stats"]["ci"]},
        "classifier_ref": bdc.model_ref(config, tox["classifier"]) if tox["scorer"] == "classifier" else None,
        "reference": s["reference_condition"],
        "n": int(wildcards.n),
        "seed": 0,
        "runtime": config["runtime"],
    }


def summarize_specdec_disparity(config: dict, wildcards: Any) -> dict[str, Any]:
    s = study(config)
    return {
        "decode_paths": decode_map(config, wildcards),
        "kl_paths": kl_map(config, wildcards),
        "contrast": list(s["contrast"]),
        "reference": s["reference_condition"],
        "stats": s["stats"],
    }


def sample_specdec_acceptance(config: dict, wildcards: Any) -> dict[str, Any]:
    """The sampling section for one job (K and N from the wildcards, no condition list)."""
    d = study(config)["sampling"]
    return {
        "pair": pair_of(config, wildcards.condition),
        "view": wildcards.view,
        "sampling": {
            **{k: v for k, v in d.items() if k not in ("conditions", "level")},
            "k": int(wildcards.k),
            "n": int(wildcards.n),
        },
        "seed": 0,
        "runtime": config["runtime"],
    }


def summarize_specdec_sampling(config: dict, wildcards: Any) -> dict[str, Any]:
    s = study(config)
    return {
        "sample_paths": sample_map(config, wildcards),
        "contrast": list(s["contrast"]),
        "n_boot": s["stats"]["n_boot"],
        "bootstrap_seed": s["seed"],
        "level": s["sampling"]["level"],
    }


def plot_specdec_disparity(config: dict, wildcards: Any) -> dict[str, Any]:
    s = study(config)
    return {
        "contrast": list(s["contrast"]),
        "reference": s["reference_condition"],
        "view": wildcards.view,
        "k": int(wildcards.k),
        "n": int(wildcards.n),
    }


def plot_specdec_kl_curve(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    return {}


def plot_specdec_toxicity(config: dict, wildcards: Any) -> dict[str, Any]:
    return {"reference": study(config)["reference_condition"], "view": wildcards.view, "n": int(wildcards.n)}


def plot_specdec_sampling(config: dict, wildcards: Any) -> dict[str, Any]:
    return {
        "reference": study(config)["reference_condition"],
        "view": wildcards.view,
        "k": int(wildcards.k),
        "n": int(wildcards.n),
    }


# --------------------------------------------------------------------------- matrix registry
def matrix_models(config: dict) -> list[dict[str, Any]]:
    """The cross-study matrix's rows: the main model, the assistant and their fine-tunes."""
    from biasdrift.matrix.registry import alias_row, model_row, path_ref

    out = []
    for role in ROLES:
        alias = _role_alias(config, role)
        out.append(alias_row(config, alias, "specdec"))
        path = f"{finetune_dir(role)}/model"
        name = f"{alias}.finetune"
        label = f"specdec {role} fine-tune ({alias})"
        out.append(model_row(name, "specdec", model=path_ref(name, path), inputs=[path], base=alias, label=label))
    return out


def matrix_probes(config: dict) -> list[dict[str, Any]]:
    """The matrix's group-certainty probe: the entropy of the next token after each
    template's identity phrase, the study's first category (a) against its second (b).
    Speculative decoding accepts more draft tokens where the next token is certain, so
    this gap is the single-model side of the acceptance disparity. Needs the templates as
    local files."""
    import csv
    from pathlib import Path

    from biasdrift.matrix.registry import certainty_probe

    s = study(config)
    if len(s["categories"]) < 2:
        return []
    group = {s["categories"][0]: "a", s["categories"][1]: "b"}
    items = []
    for alias in s["templates"]:
        path = Path(config["datasets"].get(alias, {}).get("path", ""))
        if not path.is_file():
            return []
        with path.open(encoding="utf-8", newline="") as handle:
            for r in csv.DictReader(handle, delimiter="\t"):
                if r.get("category") in group and "[M]" in r.get("template_masked", ""):
                    prompt = r["template_masked"].split("[M]")[0].rstrip()
                    # a block: one template, said of every identity
                    items.append({"prompt": prompt, "group": group[r["category"]], "block": r.get("raw", "")})
    if not items:
        return []
    a, b = s["categories"][:2]
    return [
        certainty_probe(
            "specdec-certainty",
            "specdec",
            items=items,
            groups={"a": f"{a} identities", "b": f"{b} identities"},
            description=f"entropy of the next token (nats) after {a} minus after {b} identities "
            "(< 0: the model is more certain about the first group)",
            needs=["words"],
        )
    ]
