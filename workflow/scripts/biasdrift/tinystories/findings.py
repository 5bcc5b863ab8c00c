"""The tinystories demo's claims (:mod:`biasdrift.findings`), from
``results/tinystories/summary/checks.json`` (spec 5.4's checks, :mod:`.report`):

1. the base model writes the feature when asked (rate >= 0.6) and rarely unasked (<= 0.1);
2. every deletion protocol lowers the feature's rate when asked by >= 0.4 to <= 0.2, the
   interval of the drop over seeds above zero;
3. every deleted model relearns the feature in fewer steps than the control model that
   never saw it (median over seeds of the first checkpoint with a rate >= the threshold).

The soft checks the demo does not claim (collateral change of other features, no-task
loss, probes) stay in ``checks.json`` and the report.

    PYTHONPATH=workflow/scripts .venv/bin/python -m biasdrift.findings tinystories
"""

from __future__ import annotations

import math
from pathlib import Path

from biasdrift.findings import Finding, as_float, finding, missing
from biasdrift.runtime import read_json

CHECKS = "tinystories/summary/checks.json"


def claims(results: Path, config: dict) -> list[Finding]:  # noqa: ARG001 - one signature for all
    path = Path(results) / CHECKS
    if not path.is_file():
        return [missing("tinystories", path)]
    checks = read_json(path)
    feature, out = checks["feature"], []
    base = checks["base"]
    lo, hi = base["rate_requested_ci"]
    unasked = as_float(base["rate_unrequested"])
    claim = f"base writes {feature} when asked (>= 0.6) and rarely unasked ({unasked:.2f} <= 0.1)"
    out.append(finding("tinystories", "base", claim, base["rate_requested"], lo, hi, base["passed"] is True))
    deletions = checks.get("deletion") or []
    if not deletions:
        out.append(finding("tinystories", "deletion", f"a deletion run of {feature}", None, None, None, False))
    for run in deletions:
        drop, after = run["rate_drop"], run["rate_after"]
        rate_after = as_float(after["mean"])
        claim = f"deletion lowers the {feature} rate when asked by >= 0.4 to <= 0.2 (after: {rate_after:.2f})"
        holds = run["deleted"] is True and as_float(drop["lo"]) > 0
        subject = f"{run['label']} lr {run['lr']:g} ({run['seeds']} seeds)"
        out.append(finding("tinystories", subject, claim, drop["mean"], drop["lo"], drop["hi"], holds))
    recovery = checks["recovery"]
    medians = recovery["median_steps"]
    control = as_float(medians.get("control", math.inf))
    for source, faster in sorted(recovery["faster_than_control"].items()):
        claim = f"relearns {feature} (rate >= {recovery['threshold']}) in fewer steps than the control ({control:g})"
        out.append(finding("tinystories", f"recovery of {source}", claim, medians[source], None, None, faster is True))
    if not recovery["faster_than_control"]:
        out.append(finding("tinystories", "recovery", "a recovery run beside the control's", None, None, None, False))
    return out
