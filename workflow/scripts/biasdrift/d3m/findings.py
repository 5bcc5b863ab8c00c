"""The d3m demo's claims (:mod:`biasdrift.findings`), from ``results/d3m/<world>/selection.json``
of every world: D3M with influence functions (``if``), at the k chosen on validation, raises
the test worst-group accuracy above random removal of as many examples, by more than two
standard errors of the gap over seeds (``vs_random_same_k``), and above the base model's.

    PYTHONPATH=workflow/scripts .venv/bin/python -m biasdrift.findings d3m
"""

from __future__ import annotations

from pathlib import Path

from biasdrift.findings import Finding, finding, missing
from biasdrift.runtime import read_json

CLAIMED = ("if",)  # the methods the demo claims beat random removal


def claims(results: Path, config: dict) -> list[Finding]:
    study = config["studies"]["d3m"]
    out: list[Finding] = []
    for world in sorted(study.get("worlds") or {}):
        path = Path(results) / "d3m" / world / "selection.json"
        if not path.is_file():
            out.append(missing("d3m", path))
            continue
        selection = read_json(path)
        metric = selection["select_metric"]
        base = selection["baselines"].get("base", {}).get(metric)
        for method in CLAIMED:
            entry = selection["methods"].get(method)
            if entry is None or "vs_random_same_k" not in entry:
                out.append(finding("d3m", f"{world} {method}", "a removal run beside random removal", None, 0, 0, 0))
                continue
            vs, subject = entry["vs_random_same_k"], f"{world} {method} k={entry['k']}"
            gap, se = vs["gap"], vs["gap_se"]
            claim = f"{metric} above random removal at the same k (gap, ±2 SE; random {vs['random_mean']:.3f})"
            out.append(finding("d3m", subject, claim, gap, gap - 2 * se, gap + 2 * se, gap - 2 * se > 0))
            if base is not None:
                mine, ref = entry[metric], f"{base['mean']:.3f} [{base['ci_low']:.3f}, {base['ci_high']:.3f}]"
                holds = mine["mean"] > base["mean"]
                claim = f"{metric} above the base model's ({ref})"
                out.append(finding("d3m", subject, claim, mine["mean"], mine["ci_low"], mine["ci_high"], holds))
    return out
