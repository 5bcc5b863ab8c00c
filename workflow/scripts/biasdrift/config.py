"""Config validation and alias resolution, used by ``rules/common.smk`` at parse time.

Everything here is plain Python (yaml + jsonschema): no torch, so the workflow parses
fast. Errors are :class:`ConfigError` with one line per problem, each naming the config
key (``models.tiny-gpt2.build.size.layers: 'two' is not of type 'integer'``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from biasdrift import plugins

ALIAS_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# Something that looks like a Hugging Face access token.
TOKEN_RE = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")

SOURCES = ("hf_id", "path", "build")
DATASET_SOURCES = ("hf_id", "path", "generate")
STUDIES = plugins.STUDIES
FRAGMENT_KEYS = {"study", "$defs", "generators", "architectures", "tokenizer_kinds"}
# A generator whose output changed for the same params says so here (absent = 1): the
# version joins its datasets' params, so their prepare_dataset jobs (and what follows)
# rerun, and datasets of every other generator keep their params.
#   politune_* 2: rating questions in several wordings, the pairs never in the probe's
GENERATOR_VERSIONS = {"politune_dialogues": 2, "politune_preferences": 2}


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


# --------------------------------------------------------------------------- schema
def duplicate_keys(path: str | Path) -> list[str]:
    """Keys written twice in one mapping of YAML file ``path``, as ``key.path (lines a
    and b)``. PyYAML (and so Snakemake's ``--configfile``) silently keeps the last value;
    a merge key (``<<: *anchor``) overridden by an explicit key is not a duplicate."""
    with open(path, encoding="utf-8") as handle:
        root = yaml.compose(handle, Loader=yaml.SafeLoader)
    found: list[str] = []

    def walk(node: Any, where: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    found.append(f"{_key_path((*where, key))} (lines {seen[key]} and {line})")
                else:
                    seen[key] = line
                walk(value_node, (*where, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*where, i))

    walk(root, ())
    return found


def check_no_duplicate_keys(paths: Iterable[str | Path]) -> None:
    """Raise :class:`ConfigError` naming every key written twice in these YAML files."""
    problems = [
        f"{path}: {dup}: duplicated key (the last value would silently win)"
        for path in paths
        for dup in duplicate_keys(path)
    ]
    if problems:
        raise ConfigError(problems)


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file; a key written twice in one mapping is an error naming it."""
    check_no_duplicate_keys([path])
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_schema(path: str | Path) -> dict:
    """The root schema with every study's fragment ``<dir>/schema/<study>.yaml`` merged in.

    A fragment holds ``study`` (the schema of ``studies.<study>``) and optionally
    ``$defs`` (added to the root's), ``generators`` (generator name -> schema of its
    params), ``architectures`` (added to ``build.arch``) and ``tokenizer_kinds`` (added to
    ``tokenizers.<alias>.kind``). Fragments refer to shared definitions with
    ``$ref: "#/$defs/..."`` (e.g. ``#/$defs/train`` for a training section).
    """
    path = Path(path)
    schema = load_yaml(path)
    defs = schema["$defs"]
    studies = schema["properties"]["studies"]["properties"]
    generate = defs["dataset"]["properties"]["generate"]
    for fragment_path in sorted((path.parent / "schema").glob("*.yaml")):
        fragment = load_yaml(fragment_path) or {}
        study = fragment_path.stem
        if study not in studies:
            raise ValueError(f"{fragment_path}: no study {study!r} in {path} (known: {', '.join(studies)})")
        unknown = set(fragment) - FRAGMENT_KEYS
        if unknown:
            raise ValueError(f"{fragment_path}: unknown top-level key(s) {sorted(unknown)}")
        if "study" in fragment:
            studies[study] = fragment["study"]
        for name, sub in fragment.get("$defs", {}).items():
            if name in defs:
                raise ValueError(f"{fragment_path}: $defs.{name} already exists")
            defs[name] = sub
        for name, params in fragment.get("generators", {}).items():
            generate["properties"]["generator"]["enum"].append(name)
            generate["allOf"].append(
                {"if": {"properties": {"generator": {"const": name}}}, "then": {"properties": {"params": params}}}
            )
        defs["build"]["properties"]["arch"]["enum"] += list(fragment.get("architectures", []))
        defs["tokenizer"]["properties"]["kind"]["enum"] += list(fragment.get("tokenizer_kinds", []))
    return schema


def _key_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _format_error(error) -> str:  # jsonschema.ValidationError
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return "; ".join(
            f"{where + '.' if where != '<top level>' else ''}{key}: unknown key{_suggest(key, allowed)}; "
            f"allowed here: {', '.join(allowed) or 'none'}"
            for key in extra
        )
    if error.validator == "oneOf":
        options = [" + ".join(branch.get("required", [])) for branch in error.validator_value]
        given = [k for k in options if k in (error.instance or {})]
        return f"{where}: give exactly one of {', '.join(options)} (got: {', '.join(given) or 'none'})"
    if "propertyNames" in error.schema_path:
        return (
            f"{where}: alias {error.instance!r} is not allowed; aliases are wildcard values: "
            "lower-case letters, digits, '-' and '_' (an HF id goes into hf_id, not the alias)"
        )
    return f"{where}: {error.message}"


def _default_filling_validator(schema: dict):
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def validate_config(config: dict, schema: dict | str | Path) -> dict:
    """Validate ``config`` in place against the schema, filling schema defaults, then
    check cross references and sort every mapping's keys (see :func:`canonicalize`).
    Raises :class:`ConfigError` listing every problem."""
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    if not isinstance(config, dict):
        raise ConfigError([f"the config must be a mapping, got {type(config).__name__}"])
    problems = _secret_problems(config)
    validator = _default_filling_validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    problems += _dedupe(_format_error(e) for e in errors)
    if not problems:
        problems += reference_problems(config)
    if problems:
        raise ConfigError(problems)
    canonical = canonicalize(config)
    config.clear()
    config.update(canonical)
    return config


def canonicalize(obj: Any) -> Any:
    """Sort mapping keys recursively. Snakemake compares params by ``repr``, which
    depends on key order: without this, reordering keys in a YAML file, or writing a
    default value out explicitly, would rerun every job that uses the section."""
    if isinstance(obj, dict):
        return {key: canonicalize(obj[key]) for key in sorted(obj)}
    if isinstance(obj, list):
        return [canonicalize(value) for value in obj]
    return obj


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _secret_problems(config: Any, path: tuple = ()) -> list[str]:
    """No token may be written into a config file: it would end up in params,
    Snakemake's metadata and every manifest."""
    problems: list[str] = []
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(key, str) and key.lower() in {"token", "hf_token", "use_auth_token"}:
                problems.append(
                    f"{_key_path((*path, key))}: tokens are not allowed in the config; "
                    "set the HF_TOKEN environment variable instead"
                )
            problems += _secret_problems(value, (*path, key))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            problems += _secret_problems(value, (*path, i))
    elif isinstance(config, str) and TOKEN_RE.search(config):
        problems.append(
            f"{_key_path(path)}: looks like a Hugging Face token; never put a token in the "
            "config, set the HF_TOKEN environment variable instead"
        )
    return problems


def config_from_dict(cls: type, values: dict[str, Any], where: str = "config", **extra: Any) -> Any:
    """Build dataclass ``cls`` from a params dict: the one converter from params to a
    job's config. Strict: an unknown key and a missing one (a field without a default)
    fail naming the section and the allowed keys; a field whose type is a dataclass (or
    ``Optional`` of one) is built from its dict the same way, ``where`` growing with the
    key (``studies.circuits.eap.batch_sise: unknown key``)."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__}'s keys, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    given = {**values, **extra}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(fields))}")
    required = {
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    absent = sorted(n for n in required - set(given) if fields[n].init)
    if absent:
        raise ValueError(f"{where}: missing key(s) {', '.join(absent)} of {cls.__name__}")
    hints = _field_types(cls)
    built = {}
    for name, value in given.items():
        sub = _dataclass_of(hints.get(name))
        built[name] = config_from_dict(sub, value, f"{where}.{name}") if sub and isinstance(value, dict) else value
    return cls(**built)


def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of dataclass ``cls`` (``from __future__ import
    annotations`` leaves strings); fields whose annotation cannot be resolved are left out."""
    import sys
    import typing

    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):
        namespace = vars(sys.modules[cls.__module__])
        out = {}
        for f in dataclasses.fields(cls):
            try:
                out[f.name] = eval(f.type, namespace) if isinstance(f.type, str) else f.type
            except Exception:  # an unresolvable annotation names no dataclass
                continue
        return out


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass a field annotation names (``X``, ``X | None``, ``Optional[X]``)."""
    import typing

    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(options) == 1 and isinstance(options[0], type) and dataclasses.is_dataclass(options[0]):
        return options[0]
    return None


# --------------------------------------------------------------------------- references
def reference_problems(config: dict) -> list[str]:
    """Aliases that point nowhere, and values the schema cannot express."""
    problems: list[str] = []
    datasets = config.get("datasets", {})
    tokenizers = config.get("tokenizers", {})
    for alias, tok in tokenizers.items():
        if tok["corpus"] not in datasets:
            problems.append(_unknown("dataset", tok["corpus"], f"tokenizers.{alias}.corpus", datasets))
    for alias, model in config.get("models", {}).items():
        build = model.get("build")
        if build:
            where = f"models.{alias}.build"
            if build["tokenizer"] not in tokenizers:
                problems.append(_unknown("tokenizer", build["tokenizer"], f"{where}.tokenizer", tokenizers))
            if build["corpus"] not in datasets:
                problems.append(_unknown("dataset", build["corpus"], f"{where}.corpus", datasets))
            size = build["size"]
            kv = size.get("kv_heads")
            if kv is not None and size["heads"] % kv:
                problems.append(f"{where}.size.kv_heads: {kv} does not divide heads={size['heads']}")
            if kv is not None and kv != size["heads"] and build["arch"] != "llama":
                problems.append(f"{where}.size.kv_heads: grouped-query attention needs arch llama")
            if size["hidden"] % size["heads"]:
                problems.append(f"{where}.size.hidden: {size['hidden']} is not divisible by heads={size['heads']}")
            block = build["pretrain"]["block_size"]
            if block > size["context"]:
                problems.append(f"{where}.pretrain.block_size: {block} exceeds size.context={size['context']}")
            if build["pretrain"].get("early_stopping_patience") and not build["pretrain"]["eval_steps"]:
                problems.append(f"{where}.pretrain.early_stopping_patience: needs eval_steps > 0")
        if model.get("trust_remote_code") and not model.get("hf_id") and not model.get("path"):
            problems.append(f"models.{alias}.trust_remote_code: only meaningful for hf_id or path models")
    for study in config.get("studies", {}):
        module = plugins.study_module(study, "workflow")
        if module is not None and hasattr(module, "problems"):
            problems += module.problems(config)
    if not problems and config.get("matrix") is not None:
        from biasdrift.matrix import workflow as matrix

        problems += matrix.problems(config)
    return problems


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else " (typo?)"


def _unknown(kind: str, alias: str, where: str, known: dict) -> str:
    names = ", ".join(sorted(known)) or "none defined"
    return f"{where}: unknown {kind} alias {alias!r}{_suggest(alias, known)}; known: {names}"


def require_alias(config: dict, section: str, alias: str, where: str) -> dict:
    """Look up ``config[section][alias]`` or raise a ConfigError naming ``where``."""
    known = config.get(section, {})
    if alias not in known:
        raise ConfigError([_unknown(section.rstrip("s"), alias, where, known)])
    return known[alias]


def unpinned_revisions(config: dict) -> list[str]:
    """Hub ids whose revision is not a commit sha (a warning, not an error)."""
    out = []
    for section in ("models", "datasets"):
        for alias, spec in config.get(section, {}).items():
            if spec.get("hf_id") and not SHA_RE.match(spec.get("revision") or ""):
                out.append(f"{section}.{alias}: {spec['hf_id']}@{spec.get('revision') or 'main'}")
    return out


# --------------------------------------------------------------------------- paths
def dataset_file(alias: str) -> str:
    return f"results/datasets/{alias}/data.parquet"


def tokenizer_dir(alias: str) -> str:
    return f"results/tokenizers/{alias}/tokenizer"


def built_model_dir(alias: str) -> str:
    return f"results/models/{alias}/model"


def download_marker(alias: str) -> str:
    return f"results/models/{alias}/download.json"


def model_source(config: dict, alias: str) -> str:
    spec = require_alias(config, "models", alias, f"model alias {alias!r}")
    return next(s for s in SOURCES if s in spec)


def aliases_by_source(config: dict, section: str, source: str) -> list[str]:
    return sorted(a for a, spec in config.get(section, {}).items() if source in spec)


def model_ref(config: dict, alias: str) -> dict[str, Any]:
    """Everything a job needs to load model ``alias``; passed to rules as a param
    (deterministic, token-free) and consumed by :func:`biasdrift.models.load_model`."""
    spec = require_alias(config, "models", alias, f"model alias {alias!r}")
    ref: dict[str, Any] = {"alias": alias, "trust_remote_code": bool(spec.get("trust_remote_code", False))}
    if "hf_id" in spec:
        ref.update(source="hf_id", hf_id=spec["hf_id"], revision=spec.get("revision") or "main")
    elif "path" in spec:
        ref.update(source="path", path=spec["path"])
    else:
        ref.update(source="build", path=built_model_dir(alias), arch=spec["build"]["arch"])
    return ref


def model_inputs(config: dict, alias: str) -> list[str]:
    """Files a rule must depend on to use model ``alias``."""
    source = model_source(config, alias)
    if source == "build":
        return [built_model_dir(alias)]
    if source == "hf_id":
        return [download_marker(alias)]
    return [config["models"][alias]["path"]]


def dataset_ref(config: dict, alias: str) -> dict[str, Any]:
    spec = require_alias(config, "datasets", alias, f"dataset alias {alias!r}")
    ref = {"alias": alias, **copy.deepcopy(spec)}
    version = GENERATOR_VERSIONS.get((ref.get("generate") or {}).get("generator"), 1)
    if version > 1:
        ref["generate"]["version"] = version
    return ref


def dataset_inputs(config: dict, alias: str) -> list[str]:
    """Inputs of rule prepare_dataset for ``alias`` (a local file is tracked)."""
    spec = require_alias(config, "datasets", alias, f"dataset alias {alias!r}")
    return [spec["path"]] if "path" in spec else []


# --------------------------------------------------------------------------- targets
def pretrain_plot_targets(config: dict) -> list[str]:
    if not aliases_by_source(config, "models", "build"):
        return []
    return ["results/models/plots/pretrain_loss.svg", "results/models/plots/pretrain_loss.csv"]


def final_outputs(config: dict) -> list[str]:
    """Targets of rule ``all``: every dataset, every built model, every hub download,
    the model plots, and what each enabled study adds (the study issues extend this)."""
    targets: list[str] = [dataset_file(alias) for alias in sorted(config.get("datasets", {}))]
    for alias in aliases_by_source(config, "models", "build"):
        targets += [built_model_dir(alias), f"results/models/{alias}/train_metrics.json"]
    for alias in aliases_by_source(config, "models", "hf_id"):
        targets.append(download_marker(alias))
    targets += pretrain_plot_targets(config)
    for study in sorted(config.get("studies", {})):
        module = plugins.study_module(study, "workflow")
        if module is not None and hasattr(module, "targets"):
            targets += module.targets(config)
    from biasdrift.matrix import workflow as matrix

    return targets + matrix.targets(config)


def smoke_fixture_names() -> dict[str, list[str]]:
    """Names of the smoke tier's model and dataset fixtures (biasdrift.smoke.fixtures)."""
    from biasdrift.smoke.fixtures import fixture_names

    return fixture_names()


def study_code_versions() -> dict[str, int]:
    """``CODE_VERSION`` entries of every study's workflow module and the matrix's (rules
    are defined whether or not a study is enabled, so all studies count)."""
    versions: dict[str, int] = {}
    for module in plugins.load("workflow"):
        for rule, version in getattr(module, "CODE_VERSION", {}).items():
            if rule in versions:
                raise ValueError(f"CODE_VERSION[{rule!r}] is defined by two studies")
            versions[rule] = version
    from biasdrift.matrix import workflow as matrix

    return {**versions, **matrix.CODE_VERSION}


# --------------------------------------------------------------------------- defaults
def schema_defaults(section: str, schema: dict | None = None) -> dict[str, Any]:
    """What the schema fills into an empty mapping at ``section``: a dotted path through
    the schema's properties (``studies.circuits.eap``; ``*`` for an alias's entry, as in
    ``models.*.build.size``; ``$defs.train`` for a shared definition; ``generators.<name>``
    for a dataset generator's params). The defaults live only in the schema; tests and
    code that need them ask here."""
    schema = schema or load_schema(Path(__file__).resolve().parents[3] / "config" / "schema.yaml")
    node: Any = schema
    keys = section.split(".")
    if keys[0] == "generators":
        branches = _resolve(schema, "#/$defs/dataset/properties/generate")["allOf"]
        node = next(
            b["then"]["properties"]["params"]
            for b in branches
            if b["if"]["properties"]["generator"]["const"] == keys[1]
        )
        keys = keys[2:]
    for key in keys:
        while "$ref" in node:
            node = _resolve(schema, node["$ref"])
        if key == "$defs":
            node = schema["$defs"]
        elif key == "*":
            node = node["additionalProperties"]
        elif node is schema["$defs"]:
            node = node[key]
        else:
            node = node["properties"][key]
    while "$ref" in node:
        node = _resolve(schema, node["$ref"])
    instance: dict[str, Any] = {}
    # filling happens while validating; a required key without a default is the caller's
    for _ in _default_filling_validator({**node, "$defs": schema.get("$defs", {})}).iter_errors(instance):
        pass
    return instance


def _resolve(schema: dict, ref: str) -> Any:
    node: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def from_schema(cls: type, **values: Any) -> Any:
    """Config dataclass ``cls`` built from the defaults of the schema section it mirrors
    (``cls.SCHEMA``) with ``values`` on top: for code, tests and benchmarks that build a
    config outside a rule (a rule's config comes whole from its params)."""
    names = {f.name for f in dataclasses.fields(cls)}
    base = {k: v for k, v in repo_schema_defaults(cls.SCHEMA).items() if k in names}
    return config_from_dict(cls, {**base, **values}, cls.SCHEMA)


def repo_schema_defaults(section: str) -> dict[str, Any]:
    """:func:`schema_defaults` of this checkout's config/schema.yaml (read once)."""
    return copy.deepcopy(_repo_schema_defaults(section))


@functools.cache
def _repo_schema_defaults(section: str) -> dict[str, Any]:
    return schema_defaults(section)
