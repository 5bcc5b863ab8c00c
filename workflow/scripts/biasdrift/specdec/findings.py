"""The specdec demo's claims (:mod:`biasdrift.findings`), from
``results/specdec/stats/clean_binary/k{K}_n{N}/disparity.csv`` of every decoding setting: with
the pretrained main model and assistant (condition ``base``) the assistant's share of the
emitted tokens is higher after templates of the first category than after the second
(``categories``, e.g. female − male), the interval excluding zero at every level the table
reports (prompt, identity, pattern-paired), as the demo world plants it. Where
``sampling.conditions`` is set, the measured acceptance of speculative sampling of every
sampled condition lies within its interval (``sampling.level``, 99 %) of the theory, 1 − TV per judged draft
(``results/specdec/sample/{view}/k{K}_n{N}/acceptance.csv``).

    PYTHONPATH=workflow/scripts .venv/bin/python -m biasdrift.findings specdec
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from biasdrift.findings import Finding, finding, missing

VIEW = "clean_binary"
# an interval bound within rounding of 0 is 0 (the pattern-paired level of two identical
# groups gives bounds of ±1e-17)
TOLERANCE = 1e-9
CONDITION = "base"


def claims(results: Path, config: dict) -> list[Finding]:
    study = config["studies"]["specdec"]
    a, b = study["categories"][:2]
    contrast = f"{a} − {b}"
    out: list[Finding] = []
    for k in study["decode"]["k"]:
        for n in study["decode"]["n"]:
            path = Path(results) / "specdec" / "stats" / VIEW / f"k{k}_n{n}" / "disparity.csv"
            if not path.is_file():
                out.append(missing("specdec", path))
                continue
            table = pd.read_csv(path)
            rows = table[(table["condition"] == CONDITION) & (table["contrast"] == contrast)]
            if rows.empty:
                claim = f"a {contrast} row for condition {CONDITION}"
                out.append(finding("specdec", f"{VIEW} K={k} N={n}", claim, None, None, None, False))
            for row in rows.itertuples():
                claim = f"assistant share {contrast} > 0 ({row.level} level)"
                subject = f"{CONDITION} {VIEW} K={k} N={n}"
                out.append(finding("specdec", subject, claim, row.diff, row.ci_lo, row.ci_hi, row.ci_lo > TOLERANCE))
            if study.get("sampling", {}).get("conditions"):
                out += sampling_claims(Path(results), k, n)
    return out


def sampling_claims(results: Path, k: int, n: int) -> list[Finding]:
    path = results / "specdec" / "sample" / VIEW / f"k{k}_n{n}" / "acceptance.csv"
    if not path.is_file():
        return [missing("specdec", path)]
    table = pd.read_csv(path)
    rows = table[(table["kind"] == "check") & (table["category"] == "all")]
    if rows.empty:
        return [finding("specdec", str(path), "a sampled condition", None, None, None, False)]
    return [
        finding(
            "specdec",
            f"{row.condition} sampling K={k} N={n}",
            f"sampled acceptance matches 1 − TV ({row.expected:.3f}) within its interval",
            row.acceptance,
            row.ci_lo,
            row.ci_hi,
            row.within in (True, "True"),
        )
        for row in rows.itertuples()
    ]
