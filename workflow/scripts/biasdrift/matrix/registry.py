"""The cross-study probe matrix's two registries (plain Python: imported while Snakemake
parses, no torch).

* **Models** (rows): each study's workflow module lists the causal LMs it holds with
  ``matrix_models(config) -> list[dict]`` (its base aliases and fine-tune outputs), each
  made with :func:`model_row`; ``matrix.models`` adds config aliases.
* **Probes** (columns): each study's workflow module lists its probes with
  ``matrix_probes(config) -> list[dict]``, each made with :func:`contrast_probe` or
  :func:`certainty_probe`; ``matrix.probes`` adds probes read from a TSV.

A probe is a list of items, each a prompt of group ``a`` or ``b`` in a ``block`` (items
that differ only in the group: the same frame or template; one block by default). Its
item value is a preference (``contrast``: log P(any option a) - log P(any option b) as the
next words) or the next token's entropy (``certainty``, nats); its score is mean(a) -
mean(b) within each block, averaged over the blocks that hold both groups. A probe
declares what it needs of a model (``needs``): ``words`` (every prompt and option encodes
without the unknown token) and ``chat_template`` (prompts go through a chat turn).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from biasdrift import config as bdc

KINDS = ("contrast", "certainty")
NEEDS = ("words", "chat_template")


class MatrixError(ValueError):
    """A matrix model or probe that cannot be registered (names the culprit)."""


# --------------------------------------------------------------------------- models
def model_row(
    name: str,
    study: str,
    *,
    model: dict[str, Any],
    inputs: list[str],
    base: str | None,
    label: str,
    adapter: str | None = None,
    tokenizer: dict[str, Any] | None = None,
    chat_template: str | None = None,
) -> dict[str, Any]:
    """One row: ``model`` a model ref (biasdrift.models.load_model), ``adapter`` a peft
    adapter directory on top of it, ``tokenizer`` ``{"kind": "hf", "ref": ref}`` (the
    model's own by default) or ``{"kind": "sentencepiece", "path": tok.model}``,
    ``chat_template`` a Jinja file installed on the tokenizer, ``base`` the row the change
    is measured against (None: a base itself), ``inputs`` the files the row's jobs need."""
    tokenizer = tokenizer or {"kind": "hf", "ref": model}
    if tokenizer["kind"] not in ("hf", "sentencepiece"):
        raise MatrixError(f"matrix model {name}: tokenizer kind {tokenizer['kind']!r} is not hf or sentencepiece")
    return {
        "name": name,
        "study": study,
        "label": label,
        "model": model,
        "adapter": adapter,
        "tokenizer": tokenizer,
        "chat_template": chat_template,
        "base": base,
        "inputs": sorted(set(inputs)),
    }


def path_ref(name: str, path: str) -> dict[str, Any]:
    """The model ref of a model directory a study saved."""
    return {"alias": name, "source": "path", "path": path}


def alias_row(config: dict, alias: str, study: str, label: str | None = None) -> dict[str, Any]:
    """The row of config model alias ``alias`` (a base)."""
    return model_row(
        alias,
        study,
        model=bdc.model_ref(config, alias),
        inputs=bdc.model_inputs(config, alias),
        base=None,
        label=label or alias,
    )


# --------------------------------------------------------------------------- probes
def _probe(name: str, study: str, kind: str, needs: list[str], description: str, groups: dict, items: list) -> dict:
    if kind not in KINDS:
        raise MatrixError(f"matrix probe {name}: kind {kind!r} is not one of {', '.join(KINDS)}")
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise MatrixError(f"matrix probe {name}: unknown needs {unknown}; known: {', '.join(NEEDS)}")
    if not items:
        raise MatrixError(f"matrix probe {name}: no items")
    for i, item in enumerate(items):
        if item["group"] not in ("a", "b"):
            raise MatrixError(f"matrix probe {name}: item {i} has group {item['group']!r}, not a or b")
        if not str(item["prompt"]).strip():
            raise MatrixError(f"matrix probe {name}: item {i} has an empty prompt")
        if kind == "contrast" and not (item.get("a") and item.get("b")):
            raise MatrixError(f"matrix probe {name}: contrast item {i} needs options a and b")
    blocks = {item["block"] for item in items}
    paired = [b for b in blocks if {i["group"] for i in items if i["block"] == b} == {"a", "b"}]
    if not paired:
        raise MatrixError(f"matrix probe {name}: no block has items of both groups a and b")
    return {
        "name": name,
        "study": study,
        "kind": kind,
        "needs": sorted(set(needs)),
        "description": description,
        "groups": groups,
        "items": items,
    }


def contrast_probe(
    name: str, study: str, *, items: list[dict], groups: dict[str, str], description: str, needs: list[str]
) -> dict[str, Any]:
    """Items ``{"prompt", "group": "a"|"b", "a": [words], "b": [words]}``; ``groups``
    names what groups a and b are (for the table)."""
    items = [
        {
            "prompt": i["prompt"],
            "group": i["group"],
            "block": str(i.get("block", "")),
            "a": list(i["a"]),
            "b": list(i["b"]),
        }
        for i in items
    ]
    return _probe(name, study, "contrast", needs, description, groups, items)


def certainty_probe(
    name: str, study: str, *, items: list[dict], groups: dict[str, str], description: str, needs: list[str]
) -> dict[str, Any]:
    """Items ``{"prompt", "group"}``: the value is the entropy of the next token (nats)."""
    items = [
        {"prompt": i["prompt"], "group": i["group"], "block": str(i.get("block", "")), "a": [], "b": []} for i in items
    ]
    return _probe(name, study, "certainty", needs, description, groups, items)


def read_probe_items(path: str | Path, kind: str, where: str) -> list[dict[str, Any]]:
    """The items of a probe TSV: columns ``prompt`` and ``group`` (a | b), for a contrast
    probe ``options_a`` / ``options_b`` ('|'-separated words), optionally ``block``."""
    path = Path(path)
    if not path.is_file():
        raise MatrixError(f"{where}.items: no such file {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        need = ["prompt", "group", *(["options_a", "options_b"] if kind == "contrast" else [])]
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise MatrixError(f"{where}.items: {path} lacks column(s) {', '.join(missing)} (has {reader.fieldnames})")
        rows = list(reader)
    if not rows:
        raise MatrixError(f"{where}.items: {path} has no items")

    def words(cell: str | None) -> list[str]:
        return [w.strip() for w in (cell or "").split("|") if w.strip()]

    return [
        {
            "prompt": r["prompt"],
            "group": r["group"],
            "block": r.get("block") or "",
            "a": words(r.get("options_a")),
            "b": words(r.get("options_b")),
        }
        for r in rows
    ]


def config_probe(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A probe of ``matrix.probes``: its items from a TSV."""
    where = f"matrix.probes.{name}"
    items = read_probe_items(spec["items"], spec["kind"], where)
    make = contrast_probe if spec["kind"] == "contrast" else certainty_probe
    groups = {"a": spec["group_a"], "b": spec["group_b"]}
    return make(name, "config", items=items, groups=groups, description=spec["description"], needs=spec["needs"])
