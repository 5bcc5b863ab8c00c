"""Workflow glue of study "tinystories" (imported while Snakemake parses: no torch).

Results path grammar (rules/tinystories.smk)::

    results/tinystories/corpus/{synthetic,hub}.tar.gz           synthesize_stories | download_stories
        (or corpus.path: a local tarball in the hub layout)
    results/tinystories/corpus/shards/ + manifest.json           unpack_stories
    results/tinystories/vocab/tok.model|tok.vocab|meta.json      train_vocab
    results/tinystories/tokens/{spec}/shards/ + meta.json        pretokenize (spec: the dataset's name)
    results/tinystories/pretrain/{base}/model                    pretrain_story_model (base: all | control)
    results/tinystories/delete/{protocol}/lr{lr}/seed{seed}/model  delete_feature
    results/tinystories/recover/{source}/seed{seed}/step{step}/model  recover_feature
        (source: control | {protocol}-lr{lr})
    results/tinystories/{run}/eval.json + probes.json            evaluate_story_model (run: pretrain/.. | delete/..)
    results/tinystories/recover/{source}/seed{seed}/recovery.json  evaluate_recovery
    results/tinystories/summary/*.csv + checks.json              summarize_tinystories
        (results, recovery, probes, agreement: marker rules vs the judge)
    results/tinystories/plots/*.svg|.csv                         plot_tinystories
"""

from __future__ import annotations

import re
from typing import Any

from biasdrift.config import model_inputs, model_ref
from biasdrift.tinystories.presets import model_problems
from biasdrift.tinystories.stories import FEATURES
from biasdrift.tinystories.transforms import SpecError, spec_from_dict

STUDY = "tinystories"
ROOT = f"results/{STUDY}"
BASES = ("all", "control")

CODE_VERSION = {
    "synthesize_stories": 2,
    "download_stories": 2,
    "unpack_stories": 2,
    "train_vocab": 2,
    "pretokenize": 2,
    "pretrain_story_model": 2,
    "delete_feature": 2,
    "recover_feature": 2,
    "evaluate_story_model": 3,
    "evaluate_recovery": 3,
    "summarize_tinystories": 3,
    "plot_tinystories": 2,
}


def section(config: dict) -> dict:
    return config.get("studies", {}).get(STUDY) or {}


def lr_label(lr: float) -> str:
    """How a learning rate appears in paths and wildcards: ``1e-3`` -> ``0.001``."""
    return f"{float(lr):g}"


# --------------------------------------------------------------------------- datasets
def dataset_spec(config: dict, name: str):
    sec = section(config)
    if name not in sec.get("datasets", {}):
        known = ", ".join(sorted(sec.get("datasets", {}))) or "none"
        raise KeyError(f"studies.{STUDY}: unknown dataset {name!r}; known: {known}")
    return spec_from_dict(sec["datasets"][name], f"studies.{STUDY}.datasets.{name}")


def spec_name(config: dict, dataset: str) -> str:
    """The directory name of a registry dataset: its spec's name (as the original)."""
    return dataset_spec(config, dataset).name()


def spec_names(config: dict) -> dict[str, str]:
    """{spec name: first registry dataset with that spec} (several names may share one)."""
    sec = section(config)
    out: dict[str, str] = {}
    for name in sec.get("datasets", {}):
        try:
            out.setdefault(spec_name(config, name), name)
        except SpecError:
            continue  # reported by problems()
    return out


def token_dir(config: dict, dataset: str) -> str:
    return f"{ROOT}/tokens/{spec_name(config, dataset)}/shards"


def base_dataset(config: dict, base: str) -> str:
    sec = section(config)["pretrain"]
    return sec["dataset"] if base == "all" else sec["control_dataset"]


def protocol_dataset(config: dict, protocol: str) -> str:
    return section(config)["deletion"]["protocols"][protocol]


# --------------------------------------------------------------------------- runs
def seeds(config: dict) -> list[int]:
    return list(section(config).get("seeds") or config.get("seeds") or [0])


def deletion_cells(config: dict) -> list[tuple[str, str]]:
    """(protocol, lr label) of the deletion grid."""
    deletion = section(config).get("deletion", {})
    return [(p, lr_label(lr)) for p in deletion.get("protocols", {}) for lr in deletion.get("learning_rates", [])]


def recovery_sources(config: dict) -> list[str]:
    return ["control", *(f"{p}-lr{lr}" for p, lr in deletion_cells(config))]


def recovery_steps(config: dict) -> list[int]:
    """Recovery checkpoints other than step 0 (step 0 is the source model itself)."""
    steps = section(config).get("recovery", {}).get("steps") or [0, 1]
    return sorted({int(s) for s in steps if int(s) > 0})


SOURCE_RE = re.compile(r"^(?P<protocol>[a-z0-9_-]+?)-lr(?P<lr>[0-9.e+-]+)$")


def parse_source(source: str) -> dict[str, str]:
    if source == "control":
        return {"kind": "control"}
    match = SOURCE_RE.match(source)
    if not match:
        raise ValueError(f"recovery source {source!r} is neither 'control' nor '<protocol>-lr<lr>'")
    return {"kind": "deletion", **match.groupdict()}


def source_model(source: str, seed: int | str) -> str:
    parsed = parse_source(source)
    if parsed["kind"] == "control":
        return f"{ROOT}/pretrain/control/model"
    return f"{ROOT}/delete/{parsed['protocol']}/lr{parsed['lr']}/seed{seed}/model"


def source_run(source: str, seed: int | str) -> str:
    return source_model(source, seed).removeprefix(f"{ROOT}/").removesuffix("/model")


def model_runs(config: dict) -> list[str]:
    """Runs evaluated by evaluate_story_model: the two bases and every deletion run."""
    runs = [f"pretrain/{b}" for b in BASES]
    runs += [f"delete/{p}/lr{lr}/seed{s}" for p, lr in deletion_cells(config) for s in seeds(config)]
    return runs


def recovery_runs(config: dict) -> list[str]:
    return [f"recover/{src}/seed{s}" for src in recovery_sources(config) for s in seeds(config)]


# --------------------------------------------------------------------------- targets
def summary_files() -> list[str]:
    names = ("results.csv", "recovery.csv", "agreement.csv", "checks.json")
    return [f"{ROOT}/summary/{name}" for name in names]


def plot_files() -> list[str]:
    return [f"{ROOT}/plots/{name}.{ext}" for name in ("recovery", "probes", "deletion_grid") for ext in ("svg", "csv")]


def targets(config: dict) -> list[str]:
    if not section(config):
        return []
    return [f"{ROOT}/corpus/manifest.json", *summary_files(), *plot_files()]


# --------------------------------------------------------------------------- input functions
def corpus_tarball(config: dict, wildcards) -> str:  # noqa: ARG001
    """The tarball rule unpack_stories reads: a local path as given, else the output of
    download_stories (hub) or synthesize_stories (synthetic)."""
    corpus = section(config)["corpus"]
    if "path" in corpus:
        return corpus["path"]
    return f"{ROOT}/corpus/{'hub' if 'hub' in corpus else 'synthetic'}.tar.gz"


def pretrain_data(config: dict, wildcards) -> str:
    return token_dir(config, base_dataset(config, wildcards.base))


def deletion_data(config: dict, wildcards) -> str:
    return token_dir(config, protocol_dataset(config, wildcards.protocol))


def recovery_data(config: dict, wildcards) -> str:  # noqa: ARG001
    return token_dir(config, section(config)["recovery"]["dataset"])


def recovery_source_model(config: dict, wildcards) -> str:  # noqa: ARG001
    return source_model(wildcards.source, wildcards.seed)


def eval_sets(config: dict, wildcards) -> dict[str, str]:  # noqa: ARG001
    """{eval set: token dir} (a param: the names matter to the script)."""
    return {name: token_dir(config, ds) for name, ds in section(config)["evaluation"]["eval_sets"].items()}


def eval_token_dirs(config: dict, wildcards) -> list[str]:
    """The token dirs of the eval sets (input)."""
    return sorted(set(eval_sets(config, wildcards).values()))


def prompt_subset(config: dict, wildcards) -> str:  # noqa: ARG001
    """The instruction lines the evaluation prompts render: those the base was trained on."""
    return dataset_spec(config, section(config)["pretrain"]["dataset"]).instruction_subset


def judge(config: dict, wildcards) -> dict[str, Any] | None:  # noqa: ARG001
    """The judge's model ref and settings (a param), or None: the marker detector."""
    spec = section(config)["evaluation"].get("judge")
    if not spec:
        return None
    settings = {k: v for k, v in spec.items() if k != "model" and v is not None}
    return {"ref": model_ref(config, spec["model"]), **settings}


def judge_inputs(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    spec = section(config)["evaluation"].get("judge")
    return model_inputs(config, spec["model"]) if spec else []


def recovery_checkpoints(config: dict, wildcards) -> list[str]:
    base = f"{ROOT}/recover/{wildcards.source}/seed{wildcards.seed}"
    return [f"{base}/step{s}/model" for s in recovery_steps(config)]


def model_evals(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    return [f"{ROOT}/{run}/eval.json" for run in model_runs(config)]


def model_probes(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    return [f"{ROOT}/{run}/probes.json" for run in model_runs(config)]


def recovery_evals(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    return [f"{ROOT}/{run}/recovery.json" for run in recovery_runs(config)]


def summary_layout(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    """What the summary needs to know about the runs (a param)."""
    sec = section(config)
    return {
        "feature": sec["feature"],
        "model_runs": model_runs(config),
        "recovery_runs": recovery_runs(config),
        "recovery_sources": {src: source_run(src, "{seed}") for src in recovery_sources(config)},
        "protocol_labels": sec["deletion"].get("labels", {}),
        "checks": sec.get("checks", {}),
    }


# --------------------------------------------------------------------------- stages
# One function per rule, named like it: the stage's whole params (the fields of its job
# dataclass in biasdrift.tinystories.jobs).
def synthesize_stories(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"synthetic": section(config)["corpus"]["synthetic"]}


def download_stories(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"hub": section(config)["corpus"]["hub"]}


def unpack_stories(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {}


def train_vocab(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"vocab": section(config)["vocab"]}


def pretokenize(config: dict, wildcards) -> dict[str, Any]:
    """The registry entry whose spec is named ``wildcards.spec`` (first of equal specs)."""
    names = spec_names(config)
    if wildcards.spec not in names:
        raise ValueError(f"no dataset in studies.{STUDY}.datasets is named {wildcards.spec!r}")
    dataset = names[wildcards.spec]
    return {
        "dataset": dataset,
        "spec": dataset_spec(config, dataset).as_dict(),
        "pretokenize": section(config)["pretokenize"],
    }


def stage_train(config: dict, stage: str, **overrides: Any) -> dict[str, Any]:
    """The train config of a training stage: its ``train`` section (``overrides`` on top),
    its ``eval_blocks`` and the study-wide window settings."""
    sec = section(config)
    windows = {k: sec[k] for k in ("block_size", "align_to_bos", "compile")}
    return {**sec[stage]["train"], **overrides, **windows, "eval_blocks": sec[stage]["eval_blocks"]}


def training_job(config: dict, stage: str, seed: int, scratch: str, **overrides: Any) -> dict[str, Any]:
    return {
        "train": stage_train(config, stage, **overrides),
        "seed": seed,
        "pretrain_fraction": section(config)["pretrain_fraction"],
        "runtime": config["runtime"],
        "scratch": scratch,
    }


def pretrain_story_model(config: dict, wildcards) -> dict[str, Any]:
    sec = section(config)
    scratch = f"{ROOT}/pretrain/{wildcards.base}/.scratch/pretrain_story_model"
    return {**training_job(config, "pretrain", sec["pretrain"]["seed"], scratch), "model": sec["model"]}


def delete_feature(config: dict, wildcards) -> dict[str, Any]:
    run = f"{ROOT}/delete/{wildcards.protocol}/lr{wildcards.lr}/seed{wildcards.seed}"
    seed, lr = int(wildcards.seed), float(wildcards.lr)
    return training_job(config, "deletion", seed, f"{run}/.scratch/delete_feature", learning_rate=lr)


def recover_feature(config: dict, wildcards) -> dict[str, Any]:
    steps = recovery_steps(config)
    scratch = f"{ROOT}/recover/{wildcards.source}/seed{wildcards.seed}/.scratch/recover_feature"
    job = training_job(config, "recovery", int(wildcards.seed), scratch, max_steps=max(steps))
    return {**job, "steps": steps}


def evaluation_job(config: dict, wildcards) -> dict[str, Any]:
    sec = section(config)
    return {
        "feature": sec["feature"],
        "evaluation": sec["evaluation"],
        "block_size": sec["block_size"],
        "eval_sets": eval_sets(config, wildcards),
        "instruction_subset": prompt_subset(config, wildcards),
        "judge": judge(config, wildcards),
        "seed": sec["evaluation"]["seed"],
        "device": config["runtime"]["device"],
    }


def evaluate_story_model(config: dict, wildcards) -> dict[str, Any]:
    return {**evaluation_job(config, wildcards), "probes": section(config)["probes"]}


def evaluate_recovery(config: dict, wildcards) -> dict[str, Any]:
    return {**evaluation_job(config, wildcards), "steps": recovery_steps(config)}


def summarize_tinystories(config: dict, wildcards) -> dict[str, Any]:
    return {"layout": summary_layout(config, wildcards)}


def plot_tinystories(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"feature": section(config)["feature"]}


# --------------------------------------------------------------------------- wildcards
def wildcard_regexes(config: dict) -> dict[str, str]:
    """Constraints of the study's wildcards (nothing matches when the study is off)."""

    def alternation(values) -> str:
        values = sorted(set(values), key=len, reverse=True)
        return "|".join(re.escape(v) for v in values) if values else "(?!)"

    sec = section(config)
    runs = model_runs(config) if sec else []
    return {
        "spec": alternation(spec_names(config)) if sec else "(?!)",
        "base": alternation(BASES),
        "protocol": alternation(sec.get("deletion", {}).get("protocols", {})) if sec else "(?!)",
        "lr": alternation({lr for _, lr in deletion_cells(config)}) if sec else "(?!)",
        "source": alternation(recovery_sources(config)) if sec else "(?!)",
        "step": alternation(str(s) for s in recovery_steps(config)),
        "run": alternation(runs),
    }


# --------------------------------------------------------------------------- checks
def problems(config: dict) -> list[str]:
    """Cross references the schema cannot express, one message per problem."""
    sec = section(config)
    where = f"studies.{STUDY}"
    out: list[str] = []
    datasets = sec.get("datasets", {})
    for name, values in datasets.items():
        try:
            spec_from_dict(values, f"{where}.datasets.{name}").name()
        except SpecError as err:
            out.append(f"{where}.datasets.{name}: {err}")

    def need(key: str, dataset: str) -> None:
        if dataset not in datasets:
            out.append(f"{where}.{key}: unknown dataset {dataset!r}; known: {', '.join(sorted(datasets)) or 'none'}")

    need("pretrain.dataset", sec["pretrain"]["dataset"])
    need("pretrain.control_dataset", sec["pretrain"]["control_dataset"])
    for protocol, dataset in sec["deletion"]["protocols"].items():
        need(f"deletion.protocols.{protocol}", dataset)
    need("recovery.dataset", sec["recovery"]["dataset"])
    for name, dataset in sec["evaluation"]["eval_sets"].items():
        need(f"evaluation.eval_sets.{name}", dataset)
    if sec["feature"] not in FEATURES:
        out.append(f"{where}.feature: {sec['feature']!r} is not one of {', '.join(FEATURES)}")
    for feature in sec["evaluation"]["features"]:
        if feature not in FEATURES:
            out.append(f"{where}.evaluation.features: {feature!r} is not one of {', '.join(FEATURES)}")
    if sec["feature"] not in sec["evaluation"]["features"]:
        out.append(f"{where}.evaluation.features: must include the deleted feature {sec['feature']!r}")
    steps = sec["recovery"]["steps"]
    if not [s for s in steps if s > 0]:
        out.append(f"{where}.recovery.steps: needs at least one step > 0")
    for stage in ("pretrain", "deletion", "recovery"):
        if sec[stage]["train"].get("early_stopping_patience") and not sec[stage]["train"]["eval_steps"]:
            out.append(f"{where}.{stage}.train.early_stopping_patience: needs eval_steps > 0")
    max_steps = sec["recovery"]["train"]["max_steps"]
    if max_steps not in (-1, max(steps)):
        out.append(f"{where}.recovery.train.max_steps: {max_steps} differs from max(recovery.steps) = {max(steps)}")
    if sec["feature"] not in sec["evaluation"]["recovery_features"]:
        out.append(f"{where}.evaluation.recovery_features: must include the deleted feature {sec['feature']!r}")
    out += judge_problems(config)
    out += model_problems(sec["model"], sec["block_size"], sec["vocab"]["vocab_size"], where)
    lrs = sec["deletion"]["learning_rates"]
    if len({lr_label(lr) for lr in lrs}) != len(lrs):
        out.append(f"{where}.deletion.learning_rates: duplicate values {lrs}")
    for protocol in sec["deletion"]["protocols"]:
        if protocol == "control":
            out.append(f"{where}.deletion.protocols: 'control' is reserved for the control recovery")
    return out


def judge_problems(config: dict) -> list[str]:
    """The judge must name a model alias; real stories (a corpus other than the
    synthetic one, or the paper tier) need a judge unless the marker rules are opted
    into explicitly."""
    sec = section(config)
    where = f"studies.{STUDY}.evaluation"
    spec = sec["evaluation"].get("judge")
    models = config.get("models", {})
    if spec:
        if spec["model"] not in models:
            known = ", ".join(sorted(models)) or "none"
            return [f"{where}.judge.model: unknown model alias {spec['model']!r}; known: {known}"]
        instruction = spec.get("instruction")
        missing = [k for k in ("{story}", "{question}") if instruction is not None and k not in instruction]
        return [f"{where}.judge.instruction: must contain {' and '.join(missing)}"] if missing else []
    real = "synthetic" not in sec["corpus"] or config.get("tier") == "paper"
    if real and not sec["evaluation"]["marker_detector_on_real_stories"]:
        corpus = next(iter(sec["corpus"]), "?")
        return [
            f"{where}.judge: needed (tier {config.get('tier')!r}, corpus {corpus!r}): the marker rules are exact "
            f"only on the synthetic corpus; set {where}.judge.model to a causal-LM alias in `models` "
            f"(hf_id or path), or set {where}.marker_detector_on_real_stories: true to accept the marker rates"
        ]
    return []


# --------------------------------------------------------------------------- matrix registry
def matrix_models(config: dict) -> list[dict[str, Any]]:
    """The cross-study matrix's rows: the two bases and the deletion runs of the first
    seed (SentencePiece story vocabulary)."""
    from biasdrift.matrix.registry import model_row, path_ref

    tokenizer = {"kind": "sentencepiece", "path": f"{ROOT}/vocab/tok.model"}
    seed = seeds(config)[0]
    out = []
    for base in BASES:
        path = f"{ROOT}/pretrain/{base}/model"
        name = f"tinystories-{base}"
        out.append(
            model_row(
                name,
                STUDY,
                model=path_ref(name, path),
                tokenizer=tokenizer,
                inputs=[path, tokenizer["path"]],
                base=None,
                label=f"tinystories base ({base})",
            )
        )
    for protocol, lr in deletion_cells(config):
        path = f"{ROOT}/delete/{protocol}/lr{lr}/seed{seed}/model"
        name = f"tinystories-delete-{protocol}-lr{lr}-seed{seed}"
        out.append(
            model_row(
                name,
                STUDY,
                model=path_ref(name, path),
                tokenizer=tokenizer,
                inputs=[path, tokenizer["path"]],
                base="tinystories-all",
                label=f"tinystories deletion {protocol} lr {lr}",
            )
        )
    return out
