"""One name per stage: rule = entry script = glue function = package job function; one
params route (``params.job``, the glue's whole params, converted once by the strict
converter); defaults only in the schema."""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import json
import pkgutil
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from snakejob import stage_job_class

from biasdrift import plugins
from tests.conftest import REPO

RULES = REPO / "rules"
SCRIPTS = REPO / "workflow" / "scripts"
# rules files of the shared stages (their scripts carry no study word)
SHARED = {"models", "smoke"}
GLUE = {"models": "biasdrift.workflow"}


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    topic: str  # the rules file's stem: a study or a shared topic
    script: Path | None
    params: dict[str, str]  # key -> its expression, as written


def parse_rules(folder: Path = RULES) -> list[Rule]:
    """Every rule of the workflow's rules files (snakefmt's layout: four-space sections)."""
    out = []
    for path in sorted(folder.glob("*.smk")):
        text = path.read_text()
        for m in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", text, re.S | re.M):
            name, body = m.group(1), m.group(2)
            script = re.search(r'^    script:\n\s+"([^"]+)"', body, re.M)
            params = re.search(r"^    params:\n((?:        .*\n|            .*\n)+)", body, re.M)
            keys = dict(re.findall(r"^        (\w+)=(.*?),?$", params.group(1), re.M)) if params else {}
            out.append(Rule(name, path.stem, (path.parent / script.group(1)).resolve() if script else None, keys))
    return out


def stage_function(script: Path):
    """The package function an entry script runs: ``run(snakemake, <name>)``, ``<name>``
    imported from a biasdrift module."""
    tree = ast.parse(script.read_text())
    imported = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "run" and len(n.args) == 2
    ]
    assert len(calls) == 1, f"{script.name}: the entry script is `run(snakemake, <stage>)`"
    name = calls[0].args[1].id
    module, attr = imported[name]
    assert module.startswith("biasdrift."), f"{script.name}: {name} comes from {module}, not the package"
    return getattr(importlib.import_module(module), attr)


ALL = parse_rules()


def test_the_rules_parser_sees_every_rule():
    text = "".join(p.read_text() for p in RULES.glob("*.smk"))
    assert len(ALL) == len(re.findall(r"^rule \w+:", text, re.M)) > 60


@pytest.mark.parametrize("rule", [r for r in ALL if r.name != "all"], ids=lambda r: r.name)
def test_every_rule_is_one_stage(rule):
    """Its script is named for it (and for its study), its params are the glue's whole
    params plus the code version, and glue function, package job function and rule share
    one name; the job function's first parameter is its job dataclass."""
    assert rule.script is not None and rule.script.is_file(), f"rule {rule.name}: no entry script"
    assert rule.name in rule.script.stem, f"rule {rule.name} runs {rule.script.name}"
    if rule.topic not in SHARED:
        assert rule.topic in rule.script.stem, f"{rule.script.name}: no study word {rule.topic!r}"
    assert rule.params == {
        "job": f'stage_params("{rule.topic}", "{rule.name}")',
        "code_version": f'CODE_VERSION["{rule.name}"]',
    }, f"rule {rule.name}: params must be job=stage_params(...) and code_version only"
    glue = importlib.import_module(GLUE.get(rule.topic, f"biasdrift.{rule.topic}.workflow"))
    assert callable(getattr(glue, rule.name, None)), f"{glue.__name__} has no glue function {rule.name}"
    fn = stage_function(rule.script)
    assert fn.__name__ == rule.name
    assert dataclasses.is_dataclass(stage_job_class(fn))


def test_no_entry_script_branches_on_the_rule_and_the_package_never_sees_the_job():
    scripts = {r.script for r in ALL if r.script}
    assert not [s.name for s in scripts if "smk.rule" in s.read_text() or "snakemake.rule" in s.read_text()]
    package = SCRIPTS / "biasdrift"
    touching = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if re.search(r"(?<![.\w])smk\.|snakemake\.(input|output|params|wildcards|log|rule)\b", p.read_text())
    ]
    assert not touching, f"package modules that read the Snakemake job object: {touching}"


def test_every_script_belongs_to_one_rule():
    used = [r.script.name for r in ALL if r.script]
    assert len(used) == len(set(used)), "two rules share an entry script"
    scripts = {p.name for p in SCRIPTS.glob("*.py")} - {"snakejob.py"}
    assert scripts == set(used), f"entry scripts no rule runs: {sorted(scripts - set(used))}"


@pytest.mark.workflow
def test_every_jobs_params_are_its_dataclass_fields(tiny_run):
    """Each job of the tiny run recorded its params: the keys of ``params.job`` are
    exactly its stage's dataclass fields (the strict converter also refused any other)."""
    work, _ = tiny_run
    classes = {r.name: stage_job_class(stage_function(r.script)) for r in ALL if r.script}
    seen = defaultdict(int)
    for path in (work / "results").rglob("*manifest.json"):
        manifest = json.loads(path.read_text())
        if "rule" not in manifest:  # an output that is named like one (unpack_stories' counts)
            continue
        rule = manifest["rule"]
        fields = {f.name for f in dataclasses.fields(classes[rule])}
        assert set(manifest["params"]) == {"job", "code_version"}, path
        assert set(manifest["params"]["job"]) == fields, f"{path}: {rule}'s job keys differ from its fields"
        seen[rule] += 1
    assert len(seen) > 40


# ------------------------------------------------------------------------- defaults
def all_schema_defaults(node, out: dict[str, list]) -> dict[str, list]:
    """key -> [default, ...] of every property with a default anywhere in a schema."""
    if isinstance(node, dict):
        for key, sub in (node.get("properties") or {}).items():
            if isinstance(sub, dict) and "default" in sub:
                out[key].append(sub["default"])
        for value in node.values():
            all_schema_defaults(value, out)
    elif isinstance(node, list):
        for value in node:
            all_schema_defaults(value, out)
    return out


@functools.cache
def config_dataclasses() -> set[type]:
    """Every dataclass a config value reaches: each rule's job dataclass and the
    dataclasses of its fields (recursively), every dataset generator's params, and every
    dataclass that names the schema section it mirrors (``SCHEMA``)."""
    from biasdrift import corpora
    from biasdrift.config import _dataclass_of, _field_types

    plugins.load("generators")
    todo = []
    for rule in ALL:
        try:  # a rule that is not one stage fails test_every_rule_is_one_stage
            todo.append(stage_job_class(stage_function(rule.script)))
        except (AssertionError, KeyError, TypeError, AttributeError):
            continue
    todo += [g.params_cls for g in corpora._REGISTRY.values()]
    for package in ["biasdrift", *(f"biasdrift.{s}" for s in (*plugins.STUDIES, "smoke"))]:
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            if not info.ispkg:
                module = importlib.import_module(f"{package}.{info.name}")
                todo += [c for c in vars(module).values() if isinstance(c, type) and hasattr(c, "SCHEMA")]
    seen: set[type] = set()
    while todo:
        cls = todo.pop()
        if cls in seen or not dataclasses.is_dataclass(cls):
            continue
        seen.add(cls)
        todo += [sub for hint in _field_types(cls).values() if (sub := _dataclass_of(hint))]
    return seen


def study_of(cls: type) -> str:
    """The study whose package defines ``cls`` ("" for the shared package)."""
    parts = cls.__module__.split(".")
    return parts[1] if len(parts) > 2 else ""


def duplicated_defaults(classes: list[type], schemas: list[Path]) -> list[str]:
    """Fields of ``classes`` whose default is also the schema's default of a key of the
    same name."""
    defaults: dict[str, list] = defaultdict(list)
    for path in schemas:
        all_schema_defaults(yaml.safe_load(path.read_text()), defaults)
    out = []
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                value = f.default
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                continue
            if any(type(value) is type(d) and value == d for d in defaults.get(f.name, [])):
                out.append(f"{cls.__module__}.{cls.__name__}.{f.name} = {value!r}")
    return out


@pytest.mark.parametrize("study", ["", *plugins.STUDIES, "smoke"])
def test_no_default_is_both_in_the_schema_and_in_the_package(study):
    """A config dataclass (what a rule's params or a generator's reach) of the study's
    package repeats no default of the schema (config/schema.yaml and the study's fragment)."""
    fragment = [REPO / f"config/schema/{study}.yaml"] if study in plugins.STUDIES else []
    mine = sorted((c for c in config_dataclasses() if study_of(c) == study), key=lambda c: c.__qualname__)
    assert mine or study == "smoke"
    twice = duplicated_defaults(mine, [REPO / "config/schema.yaml", *fragment])
    assert not twice, "defaults written in the schema and again in code:\n" + "\n".join(twice)


def test_the_defaults_check_sees_a_default_written_twice(tmp_path, monkeypatch):
    """A package dataclass repeating a schema default (batch_size 16 of $defs.train) is
    found; another value under the same name, or a field without a default, is not."""
    package = tmp_path / "twicepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cfg.py").write_text(
        "from dataclasses import dataclass\n"
        "@dataclass\nclass Twice:\n    batch_size: int = 16\n"
        "@dataclass\nclass Other:\n    max_steps: int\n    batch_size: int = 17\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from twicepkg.cfg import Other, Twice

    found = duplicated_defaults([Twice, Other], [REPO / "config/schema.yaml"])
    assert found == ["twicepkg.cfg.Twice.batch_size = 16"]
