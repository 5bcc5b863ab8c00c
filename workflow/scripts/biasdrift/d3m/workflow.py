"""Workflow glue of study d3m (imported while Snakemake parses: no torch, no pandas).

Results (rules/d3m.smk; logs/ and benchmarks/ mirror them)::

    results/d3m/{world}/data.parquet                         prepare_d3m_world
    results/d3m/{world}/base/seed{seed}/model/               finetune_d3m_base (+ epoch-<n>/ for TRAK)
    results/d3m/{world}/base/seed{seed}/preds.parquet        ... predictions on every split
    results/d3m/{world}/scores/{method}/scores.npy|uids.json score_d3m_trak / score_d3m_if
    results/d3m/{world}/align/{method}.parquet               align_d3m
    results/d3m/{world}/cf/{method}/k{k}/seed{seed}/         retrain_d3m (method: attribution or random)
    results/d3m/{world}/cf/{baseline}/seed{seed}/            retrain_d3m_baseline (balance, heuristic-<method>)
    results/d3m/{world}/counterfactual.parquet|summary.csv   aggregate_d3m
    results/d3m/{world}/plots/                               plot_d3m_* (report)
    results/d3m/sweep/sweep.csv|sweep.json                   summarize_d3m_sweep (two worlds or more)
    results/d3m/sweep/plots/sweep.svg|csv                    plot_d3m_sweep (report)
"""

from __future__ import annotations

from typing import Any

from biasdrift import config as bdc

STUDY = "d3m"
CODE_VERSION = {
    "prepare_d3m_world": 2,
    "finetune_d3m_base": 3,  # 2: epoch snapshots only where a TRAK ensemble uses them
    "score_d3m_trak": 3,  # 3: X^T X and its inverse in float64, the relative ridge
    "score_d3m_if": 2,
    "align_d3m": 2,
    "retrain_d3m": 2,
    "retrain_d3m_baseline": 2,
    "aggregate_d3m": 2,
    "plot_d3m_counterfactual": 2,
    "plot_d3m_attribution": 2,
    "summarize_d3m_sweep": 2,
    "plot_d3m_sweep": 2,
}
SWEEP = "sweep"  # results/d3m/sweep/: not a world name
RANDOM = "random"
BALANCE = "balance"
HEURISTIC = "heuristic-"
CURVES = {"wga_vs_k": ["wga_cell", "wga_group"], "accuracy_vs_k": ["accuracy", "balanced_accuracy"]}
PLOTS_ATTRIBUTION = ("score_heatmap", "alignment_cells", "top_harmful", "alignment_scatter")


def section(config: dict) -> dict:
    return config["studies"][STUDY]


def root(world: str) -> str:
    return f"results/{STUDY}/{world}"


# --------------------------------------------------------------------------- names
def enabled(config: dict) -> bool:
    return STUDY in config.get("studies", {})


def _names(config: dict, *keys: str) -> list:
    """Sorted keys (or items) of ``studies.d3m.<keys...>``; empty when d3m is off."""
    if not enabled(config):
        return []
    node = section(config)
    for key in keys:
        node = node[key]
    return sorted(node)


def worlds(config: dict) -> list[str]:
    return _names(config, "worlds")


def trak_methods(config: dict) -> list[str]:
    return _names(config, "trak")


def influence_methods(config: dict) -> list[str]:
    return _names(config, "influence")


def attribution_methods(config: dict) -> list[str]:
    return sorted(trak_methods(config) + influence_methods(config))


def removal_methods(config: dict) -> list[str]:
    return _names(config, "removal", "methods")


def baselines(config: dict) -> list[str]:
    return _names(config, "removal", "baselines")


def format_k(value: float) -> str:
    """A k grid value as it appears in paths (``0.05``, ``100``)."""
    return f"{value:g}"


def k_values(config: dict) -> list[str]:
    return [format_k(k) for k in section(config)["removal"]["k"]] if enabled(config) else []


def seeds(config: dict) -> list[int]:
    return _names(config, "seeds")


# --------------------------------------------------------------------------- paths
def data_file(world: str) -> str:
    return f"{root(world)}/data.parquet"


def base_dir(world: str, seed: int | str) -> str:
    return f"{root(world)}/base/seed{seed}"


def scores_dir(world: str, method: str) -> str:
    return f"{root(world)}/scores/{method}"


def align_file(world: str, method: str) -> str:
    return f"{root(world)}/align/{method}.parquet"


def cf_dir(world: str, method: str, k: str | None, seed: int | str) -> str:
    if k is None:
        return f"{root(world)}/cf/{method}/seed{seed}"
    return f"{root(world)}/cf/{method}/k{k}/seed{seed}"


def run_metrics(config: dict, world: str) -> list[str]:
    """Every run's metrics.json of one world: base models, removals, baselines."""
    out = [f"{base_dir(world, s)}/metrics.json" for s in seeds(config)]
    for method in removal_methods(config):
        out += [f"{cf_dir(world, method, k, s)}/metrics.json" for k in k_values(config) for s in seeds(config)]
    for baseline in baselines(config):
        out += [f"{cf_dir(world, baseline, None, s)}/metrics.json" for s in seeds(config)]
    return out


def targets(config: dict) -> list[str]:
    out = []
    for world in worlds(config):
        out += [f"{root(world)}/summary.csv", f"{root(world)}/selection.json"]
        out += [f"{root(world)}/plots/{name}.svg" for name in CURVES]
        if attribution_methods(config):
            out += [f"{root(world)}/plots/{name}.svg" for name in PLOTS_ATTRIBUTION]
    if len(worlds(config)) > 1:
        out += [f"{root(SWEEP)}/sweep.csv", f"{root(SWEEP)}/sweep.json", f"{root(SWEEP)}/plots/sweep.svg"]
    return out


def sweep_inputs(config: dict, wildcards: Any) -> dict[str, list[str]]:  # noqa: ARG001
    """Every world's selection and long table, in the order of :func:`worlds`."""
    return {
        "selections": [f"{root(w)}/selection.json" for w in worlds(config)],
        "longs": [f"{root(w)}/counterfactual.parquet" for w in worlds(config)],
        "aligns": [align_file(w, m) for w in worlds(config) for m in attribution_methods(config)],
    }


def world_label(params: dict[str, Any]) -> str:
    """A short label of a synthetic world: its biased cells' train rows (at effect 1), the
    other cells', the label noise and the effect size."""
    group, label = params["biased_group"], int(params["majority_label"])
    cells = f"{group}|{label}:{group}|{1 - label} = {params['n_majority']}:{params['n_minority']}"
    return f"{cells}, others {params['n_other']}, noise {params['label_noise']:g}, effect {params['effect']:g}"


# --------------------------------------------------------------------------- rule functions
def world_inputs(config: dict, wildcards: Any) -> dict[str, str]:
    spec = section(config)["worlds"][wildcards.world]
    out = {"dataset": bdc.dataset_file(spec["dataset"])}
    if spec.get("test_dataset"):
        out["test_dataset"] = bdc.dataset_file(spec["test_dataset"])
    return out


def model_inputs(config: dict, wildcards: Any) -> list[str]:  # noqa: ARG001
    return bdc.model_inputs(config, section(config)["model"])


WORLD_TRAK_KEYS = ("proj_dim", "lambda_reg", "ridge")  # studies.d3m.worlds.<world>.trak overrides


def world_trak(config: dict, world: str, method: str) -> dict[str, Any]:
    """TRAK method ``method`` as it runs on ``world``: its settings with the world's
    overrides (``worlds.<world>.trak``: proj_dim, lambda_reg, ridge) where they are set."""
    spec = dict(section(config)["trak"][method])
    overrides = section(config)["worlds"][world].get("trak") or {}
    spec.update({key: overrides[key] for key in WORLD_TRAK_KEYS if overrides.get(key) is not None})
    return spec


def trak_where(world: str, method: str) -> str:
    """The config keys behind a TRAK setting of one world, for error messages."""
    return f"studies.{STUDY}.trak.{method} on world {world!r} (overridable in studies.{STUDY}.worlds.{world}.trak)"


def trak_checkpoints(config: dict, wildcards: Any) -> list[str]:
    """Base model directories whose checkpoints form the TRAK ensemble."""
    spec = section(config)["trak"][wildcards.method]
    chosen = spec["checkpoints"]["seeds"] or [section(config)["score_seed"]]
    return [f"{base_dir(wildcards.world, s)}/model" for s in chosen]


def snapshot_epochs(config: dict, wildcards: Any) -> list[int]:
    """Epochs of base model ``wildcards.seed`` that some TRAK ensemble uses: only those
    are kept as snapshots (every epoch of bert-base would be 440 MB each)."""
    out: set[int] = set()
    for spec in section(config)["trak"].values():
        chosen = spec["checkpoints"]["seeds"] or [section(config)["score_seed"]]
        if int(wildcards.seed) in chosen:
            out |= set(spec["checkpoints"]["epochs"])
    return sorted(out)


def score_model(config: dict, wildcards: Any) -> list[str]:
    return [f"{base_dir(wildcards.world, section(config)['score_seed'])}/model"]


def score_preds(config: dict, wildcards: Any) -> str:
    return f"{base_dir(wildcards.world, section(config)['score_seed'])}/preds.parquet"


def score_files(config: dict, wildcards: Any) -> dict[str, str]:  # noqa: ARG001
    folder = scores_dir(wildcards.world, wildcards.method)
    return {"scores": f"{folder}/scores.npy", "uids": f"{folder}/uids.json"}


def retrain_inputs(config: dict, wildcards: Any) -> dict[str, Any]:
    """Data and backbone; the alignment table when the removal set comes from one."""
    out: dict[str, Any] = {"data": data_file(wildcards.world), "backbone": model_inputs(config, wildcards)}
    method = getattr(wildcards, "method", None) or getattr(wildcards, "baseline", "")
    if method.startswith(HEURISTIC):
        method = method[len(HEURISTIC) :]
    if method in attribution_methods(config):
        out["align"] = align_file(wildcards.world, method)
    return out


def world_runs(config: dict, wildcards: Any) -> list[str]:
    return run_metrics(config, wildcards.world)


def attribution_inputs(config: dict, wildcards: Any) -> dict[str, Any]:
    world = wildcards.world
    methods = attribution_methods(config)
    return {
        "data": data_file(world),
        "scores": [f"{scores_dir(world, m)}/scores.npy" for m in methods],
        "uids": [f"{scores_dir(world, m)}/uids.json" for m in methods],
        "align": [align_file(world, m) for m in methods],
    }


def scatter_pair(config: dict) -> list[str]:
    """The two methods of the alignment scatter: influence vs TRAK when both exist."""
    first = [m[0] for m in (influence_methods(config), trak_methods(config)) if m]
    return first if len(first) == 2 else attribution_methods(config)[:2]


# --------------------------------------------------------------------------- stages
# One glue function per rule, named like it: the stage's whole params (the fields of its
# job dataclass in biasdrift.d3m.jobs).
def prepare_d3m_world(config: dict, wildcards: Any) -> dict[str, Any]:
    """The world's preparation settings only (its TRAK overrides left out, so that
    changing those does not prepare the data, and retrain everything, again)."""
    spec = section(config)["worlds"][wildcards.world]
    return {
        "world": wildcards.world,
        "prepare": spec["prepare"],
        "settings": spec.get(spec["prepare"], {}),  # the preparer's own section (none for table)
        "imbalance": spec["imbalance"],
        "seed": spec["seed"],
    }


def _training(config: dict, wildcards: Any) -> dict[str, Any]:
    s = section(config)
    return {
        "model": bdc.model_ref(config, s["model"]),
        "finetune": s["finetune"],
        "max_length": s["max_length"],
        "metrics": s["metrics"],
        "seed": int(wildcards.seed),
        "runtime": config["runtime"],
    }


def finetune_d3m_base(config: dict, wildcards: Any) -> dict[str, Any]:
    return {
        **_training(config, wildcards),
        "snapshot_epochs": snapshot_epochs(config, wildcards),
        "scratch": f"{base_dir(wildcards.world, wildcards.seed)}/.scratch/finetune_d3m_base",
    }


def retrain_d3m(config: dict, wildcards: Any) -> dict[str, Any]:
    folder = cf_dir(wildcards.world, wildcards.method, wildcards.k, wildcards.seed)
    return {
        **_training(config, wildcards),
        "method": wildcards.method,
        "k": float(wildcards.k),
        "unit": section(config)["removal"]["unit"],
        "scratch": f"{folder}/.scratch/retrain_d3m",
    }


def retrain_d3m_baseline(config: dict, wildcards: Any) -> dict[str, Any]:
    folder = cf_dir(wildcards.world, wildcards.baseline, None, wildcards.seed)
    return {
        **_training(config, wildcards),
        "method": wildcards.baseline,
        "unit": section(config)["removal"]["unit"],
        "scratch": f"{folder}/.scratch/retrain_d3m_baseline",
    }


def score_d3m_trak(config: dict, wildcards: Any) -> dict[str, Any]:
    """TRAK method ``wildcards.method`` with the world's overrides; its checkpoint
    epochs apart (the checkpoint seeds are the rule's model inputs)."""
    s, world, method = section(config), wildcards.world, wildcards.method
    trak = world_trak(config, world, method)
    checkpoints = trak.pop("checkpoints")
    return {
        "world": world,
        "method": method,
        "trak": trak,
        "epochs": checkpoints["epochs"],
        "query_split": s["query_split"],
        "max_length": s["max_length"],
        "seed": trak["projector_seed"],
        "runtime": config["runtime"],
        "work": f"{scores_dir(world, method)}/.scratch/score_d3m_trak",
    }


def score_d3m_if(config: dict, wildcards: Any) -> dict[str, Any]:
    s, method = section(config), wildcards.method
    return {
        "method": method,
        "influence": s["influence"][method],
        "query_split": s["query_split"],
        "max_length": s["max_length"],
        "seed": s["score_seed"],
        "runtime": config["runtime"],
        "work": f"{scores_dir(wildcards.world, method)}/.scratch/score_d3m_if",
    }


def align_d3m(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    s = section(config)
    return {"query_split": s["query_split"], "grouping": s["grouping"]}


def aggregate_d3m(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    metrics = section(config)["metrics"]
    return {"level": metrics["level"], "select_metric": metrics["select_metric"]}


def summarize_d3m_sweep(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    """The sweep's worlds (in input order), a label of each generated world's parameters,
    and the interval level."""
    descriptions, majority = {}, {}
    for world in worlds(config):
        alias = section(config)["worlds"][world]["dataset"]
        generate = config.get("datasets", {}).get(alias, {}).get("generate") or {}
        synthetic = generate.get("generator") == "d3m_synthetic"
        descriptions[world] = world_label(generate["params"]) if synthetic else f"dataset {alias}"
        if synthetic:  # the cell whose examples the planted shortcut rests on
            majority[world] = f"{generate['params']['biased_group']}|{int(generate['params']['majority_label'])}"
    return {
        "worlds": worlds(config),
        "aligns": [[w, m] for w in worlds(config) for m in attribution_methods(config)],
        "descriptions": descriptions,
        "majority_cells": majority,
        "level": section(config)["metrics"]["level"],
    }


def plot_d3m_sweep(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    return {}


def plot_d3m_counterfactual(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    return {"metrics": CURVES[wildcards.curve]}


def plot_d3m_attribution(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    s = section(config)
    return {
        "methods": attribution_methods(config),
        "pair": scatter_pair(config),
        "query_split": s["query_split"],
        "top_n": s["report"]["top_examples"],
    }


# --------------------------------------------------------------------------- checks
def problems(config: dict) -> list[str]:
    """Cross references the schema cannot express, one message per problem."""
    cfg = section(config)
    where = f"studies.{STUDY}"
    out: list[str] = []
    if cfg["model"] not in config.get("models", {}):
        out.append(_unknown("model", cfg["model"], f"{where}.model", config.get("models", {})))
    datasets = config.get("datasets", {})
    for name, world in cfg["worlds"].items():
        for key in ("dataset", "test_dataset"):
            alias = world.get(key)
            if alias and alias not in datasets:
                out.append(_unknown("dataset", alias, f"{where}.worlds.{name}.{key}", datasets))
        if name == SWEEP:
            out.append(f"{where}.worlds.{name}: the name is taken by the sweep's results (results/d3m/{SWEEP}/)")
        if world["prepare"] == "toxigen" and not world.get("test_dataset"):
            out.append(f"{where}.worlds.{name}.test_dataset: the toxigen preparer needs the annotated config")
        out += _k_problems(config, name, world)
        out += _world_trak_problems(config, name, world)
        out += _vocabulary_problems(config, name, world)
    if cfg["score_seed"] not in cfg["seeds"]:
        out.append(f"{where}.score_seed: {cfg['score_seed']} is not one of seeds {cfg['seeds']}")
    both = sorted(set(cfg["trak"]) & set(cfg["influence"]))
    if both:
        out.append(f"{where}: attribution name(s) {both} are used by both trak and influence")
    attributions = attribution_methods(config)
    for name in attributions:
        if name in (RANDOM, BALANCE) or name.startswith(HEURISTIC):
            out.append(f"{where}: attribution name {name!r} is reserved (random, balance, heuristic-*)")
    for i, method in enumerate(cfg["removal"]["methods"]):
        if method != RANDOM and method not in attributions:
            out.append(
                f"{where}.removal.methods[{i}]: unknown method {method!r}; known: {', '.join([RANDOM, *attributions])}"
            )
    for i, baseline in enumerate(cfg["removal"]["baselines"]):
        ok = baseline == BALANCE or (baseline.startswith(HEURISTIC) and baseline[len(HEURISTIC) :] in attributions)
        if not ok:
            known = [BALANCE] + [f"{HEURISTIC}{m}" for m in attributions]
            out.append(f"{where}.removal.baselines[{i}]: unknown baseline {baseline!r}; known: {', '.join(known)}")
    if cfg["removal"]["unit"] == "fraction":
        out += [
            f"{where}.removal.k[{i}]: k = {k:g} is a fraction of the training set and must be < 1"
            for i, k in enumerate(cfg["removal"]["k"])
            if k >= 1
        ]
    epochs = cfg["finetune"]["epochs"]
    device = config.get("runtime", {}).get("device", "auto")
    for name, spec in cfg["trak"].items():
        if spec["projector"] == "cuda" and device == "cpu":
            out.append(f"{where}.trak.{name}.projector: cuda (fast_jl) cannot run with runtime.device cpu; use auto")
        for s in spec["checkpoints"]["seeds"]:
            if s not in cfg["seeds"]:
                out.append(f"{where}.trak.{name}.checkpoints.seeds: {s} is not one of seeds {cfg['seeds']}")
        for e in spec["checkpoints"]["epochs"]:
            if cfg["finetune"]["max_steps"] == -1 and e > epochs:
                out.append(f"{where}.trak.{name}.checkpoints.epochs: epoch {e} > finetune.epochs {epochs}")
    return out


def _word_seed(config: dict, alias: str | None) -> int | None:
    """The seed of a d3m_synthetic dataset's words (None for any other dataset)."""
    generate = config.get("datasets", {}).get(alias, {}).get("generate") or {}
    if generate.get("generator") != "d3m_synthetic":
        return None
    params = generate.get("params") or {}
    return params["vocab_seed"] if params.get("vocab_seed") is not None else generate.get("seed", 0)


def _vocabulary_problems(config: dict, name: str, world: dict) -> list[str]:
    """A generated world whose words are not the words the classifier's tokenizer and
    pretraining saw: every pseudo-word falls apart into ~4 sub-word pieces and, at the
    demo's max_length, texts lose words (the core word among them) to truncation."""
    mine = _word_seed(config, world.get("dataset"))
    build = config.get("models", {}).get(section(config)["model"], {}).get("build") or {}
    if mine is None or not build:
        return []
    out = []
    corpora = {
        f"tokenizer {build.get('tokenizer')!r}": config.get("tokenizers", {})
        .get(build.get("tokenizer"), {})
        .get("corpus"),
        "pretraining": build.get("corpus"),
    }
    for what, corpus in corpora.items():
        theirs = _word_seed(config, corpus)
        if theirs is not None and theirs != mine:
            out.append(
                f"studies.{STUDY}.worlds.{name}: dataset {world['dataset']!r} draws its words with seed {mine}, "
                f"but the {what} of model {section(config)['model']!r} learned the words of {corpus!r} "
                f"(seed {theirs}); set datasets.{world['dataset']}.generate.params.vocab_seed: {theirs}"
            )
    return out


def _unknown(kind: str, alias: str, where: str, known: dict) -> str:
    return f"{where}: unknown {kind} alias {alias!r}; known: {', '.join(sorted(known)) or 'none defined'}"


def train_rows(config: dict, world: dict) -> int | None:
    """Training rows of a world where the config fixes them before any job runs: a
    table world generated by d3m_synthetic, or a toxigen world that lists its groups
    (every (group, label) cell then holds exactly its configured count, or preparation
    fails). None where only the prepared data knows (hatexplain: the smallest cell; a
    local table; toxigen without a group list)."""
    if world["prepare"] == "table":
        spec = config.get("datasets", {}).get(world["dataset"], {})
        generate = spec.get("generate") or {}
        if generate.get("generator") != "d3m_synthetic":
            return None
        from biasdrift.config import from_schema
        from biasdrift.d3m.generators import SyntheticParams, cell_counts

        return sum(cell_counts(from_schema(SyntheticParams, **(generate.get("params") or {})))["train"].values())
    if world["prepare"] == "toxigen":
        params, imbalance = world.get("toxigen") or {}, world.get("imbalance") or {}
        if not params.get("groups"):
            return None
        biased = set(imbalance.get("biased_groups", []))
        per_cell, ratio = params["train_per_cell"], imbalance.get("biased_ratio", 0.25)
        thinned = int(ratio * per_cell)  # the formula of data.Imbalance.train_count
        return sum(per_cell + (thinned if group in biased else per_cell) for group in set(params["groups"]))
    return None


def _world_trak_problems(config: dict, name: str, world: dict) -> list[str]:
    """Per-world TRAK overrides and proj_dim against the training rows where the
    config fixes them (else the scoring job checks before it loads a model); a
    biased group that is not one of the world's groups (no bias would be planted)."""
    out = []
    where = f"studies.{STUDY}.worlds.{name}"
    for key in ("toxigen", "hatexplain"):
        groups = (world.get(key) or {}).get("groups") if world["prepare"] == key else None
        unknown = sorted(set(world.get("imbalance", {}).get("biased_groups", [])) - set(groups or []))
        if groups and unknown:
            out.append(f"{where}.imbalance.biased_groups: {unknown} not among {where}.{key}.groups {groups}")
    if (world.get("trak") or {}) and not trak_methods(config):
        out.append(f"{where}.trak: overrides TRAK settings, but studies.{STUDY}.trak defines no TRAK attribution")
    n_train = train_rows(config, world)
    if n_train is None:
        return out
    from biasdrift.config import config_from_dict
    from biasdrift.d3m.attribution import TrakConfig, TrakSetupError, check_proj_dim

    for method in trak_methods(config):
        spec = {k: v for k, v in world_trak(config, name, method).items() if k != "checkpoints"}
        try:
            cfg = config_from_dict(TrakConfig, spec, f"studies.{STUDY}.trak.{method}")
            check_proj_dim(cfg, n_train, trak_where(name, method))
        except TrakSetupError as err:
            out.append(str(err))
    return out


def _k_problems(config: dict, name: str, world: dict) -> list[str]:
    """k beyond the training set, where its size is known before any job runs (see
    :func:`train_rows`); otherwise retrain jobs check it first thing."""
    removal = section(config)["removal"]
    if removal["unit"] != "count":
        return []
    n_train = train_rows(config, world)
    if n_train is None:
        return []
    return [
        f"studies.{STUDY}.removal.k[{i}]: k = {k:g} removes at least the whole training set of world "
        f"{name!r} ({n_train} examples)"
        for i, k in enumerate(removal["k"])
        if k >= n_train
    ]
