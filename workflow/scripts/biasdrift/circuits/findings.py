"""The demo tier's claims, checked on ``results/circuits/bias_summary.csv`` (planted groups):

1. the base model carries the planted bias: M1 of the negative nationalities is below 0 and
   of the positive ones above 0 (95 % intervals), and the male-skewed professions get more
   male mass (G2) than the female-skewed ones;
2. each positive-bias (demographic) fine-tune raises M2 of the previously negative group
   (interval of the paired change above 0);
3. each unrelated fine-tune moves that M2 less than each positive-bias fine-tune does
   (upper end of its change interval below the lower end of the positive one's).

Run on the demo's results (exit status 1 when a claim fails)::

    PYTHONPATH=workflow/scripts .venv/bin/python -m biasdrift.circuits.findings \\
        results/circuits/bias_summary.csv --config config/config.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys
from math import nan
from pathlib import Path

import pandas as pd
import yaml

from biasdrift.findings import Finding, missing

log = logging.getLogger(__name__)
SUMMARY = "circuits/bias_summary.csv"


def _row(table: pd.DataFrame, ft: str, group: str, metric: str) -> pd.Series | None:
    rows = table[(table.ft == ft) & (table.group == group) & (table.metric == metric)]
    return rows.iloc[0] if len(rows) else None


def check(summary: pd.DataFrame, kinds: dict[str, str]) -> list[Finding]:
    """Every claim for every (model, template) of the planted grouping. ``kinds``:
    fine-tune alias -> kind (positive_bias | unrelated), see :func:`finetune_kinds`."""
    missing = {"model", "ft", "grouping", "group", "template", "metric", "mean", "lo", "hi"} - set(summary.columns)
    missing |= {"change", "change_lo", "change_hi"} - set(summary.columns)
    if missing:
        raise ValueError(f"bias summary: missing column(s) {sorted(missing)}")
    planted = summary[summary.grouping == "planted"]
    if planted.empty:
        raise ValueError("bias summary: no planted groups (only the demo tier knows them)")
    positive = [ft for ft, kind in kinds.items() if kind == "positive_bias"]
    unrelated = [ft for ft, kind in kinds.items() if kind == "unrelated"]
    out: list[Finding] = []
    for (model, template), table in planted.groupby(["model", "template"], sort=True):

        def add(claim: str, row: pd.Series | None, value: str, holds: bool, model=model, template=template) -> None:
            subject = f"{model} {template}"
            if row is None:  # a claim without its numbers fails
                out.append(Finding("circuits", subject, f"{claim} (no rows)", nan, nan, nan, False))
                return
            lo, hi = ("change_lo", "change_hi") if value == "change" else ("lo", "hi")
            numbers = float(row[value]), float(row[lo]), float(row[hi])
            out.append(Finding("circuits", subject, claim, *numbers, bool(holds)))

        if template.startswith("gss"):
            male, female = _row(table, "base", "male", "g2"), _row(table, "base", "female", "g2")
            if male is None or female is None:
                add("base G2 of male-skewed professions > female-skewed", None, "mean", False)
            else:
                claim = f"base G2 of male-skewed professions > female-skewed ({female['mean']:.3f})"
                add(claim, male, "mean", male.lo > female.hi)
            continue
        neg, pos = _row(table, "base", "negative", "m1"), _row(table, "base", "positive", "m1")
        add("base M1 of the negative nationalities < 0", neg, "mean", neg is not None and neg.hi < 0)
        add("base M1 of the positive nationalities > 0", pos, "mean", pos is not None and pos.lo > 0)
        lifts = {ft: _row(table, ft, "negative", "m2") for ft in positive}
        for ft, row in lifts.items():
            add(f"{ft} fine-tune raises M2 of the negative group", row, "change", row is not None and row.change_lo > 0)
        floor = min((r.change_lo for r in lifts.values() if r is not None), default=nan)
        for ft in unrelated:
            row = _row(table, ft, "negative", "m2")
            holds = row is not None and row.change_hi < floor
            add(f"{ft} fine-tune moves that M2 less than the positive one", row, "change", holds)
    return out


def finetune_kinds(config_path: Path) -> dict[str, str]:
    """Fine-tune alias -> kind from a config file (:func:`kinds_of`)."""
    return kinds_of(yaml.safe_load(Path(config_path).read_text()))


def kinds_of(config: dict) -> dict[str, str]:
    """Fine-tune alias -> kind; positive-bias fine-tunes of the gender set (male-praise
    data, not aimed at the demographic bias) are left out."""
    finetunes = ((config.get("studies") or {}).get("circuits") or {}).get("finetunes") or {}
    return {
        name: spec["kind"]
        for name, spec in finetunes.items()
        if not (spec["kind"] == "positive_bias" and spec.get("bias", "demographic") != "demographic")
    }


def claims(results: Path, config: dict) -> list[Finding]:
    """The claims on ``<results>/circuits/bias_summary.csv`` (:mod:`biasdrift.findings`)."""
    path = Path(results) / SUMMARY
    if not path.is_file():
        return [missing("circuits", path)]
    return check(pd.read_csv(path), kinds_of(config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("summary", type=Path, help="results/circuits/bias_summary.csv")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"), help="the config that made it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    findings = check(pd.read_csv(args.summary), finetune_kinds(args.config))
    for finding in findings:
        log.info(finding.line())
    held = sum(f.holds for f in findings)
    log.info("%d of %d claims hold", held, len(findings))
    return 0 if findings and held == len(findings) else 1


if __name__ == "__main__":
    sys.exit(main())
