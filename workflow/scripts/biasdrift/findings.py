"""The demo tier's scientific claims, one checker per study, run on finished results.

Each study ``biasdrift.<study>.findings`` has ``claims(results, config) -> list[Finding]``:
the claims its demo world was built to show (a planted effect found, a fine-tune moving it),
each with the number, the interval it is judged on and whether it holds. A result file a
claim needs but the run did not write makes that claim fail (it is never skipped).

    PYTHONPATH=workflow/scripts python -m biasdrift.findings [--results results] \\
        [--config config/config.yaml] [--json results/findings.json] [--markdown FILE] [study ...]

prints every claim and exits 1 when one fails (``make findings``; ``make demo`` runs it last).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from biasdrift import plugins


@dataclass(frozen=True)
class Finding:
    study: str
    subject: str  # the model, run or condition the claim is about
    claim: str
    value: float
    lo: float
    hi: float
    holds: bool

    def number(self) -> str:
        """The value with its interval (none where both bounds are NaN)."""
        interval = "" if math.isnan(self.lo) and math.isnan(self.hi) else f" [{self.lo:+.3f}, {self.hi:+.3f}]"
        return f"{self.value:+.3f}{interval}"

    def line(self) -> str:
        mark = "ok  " if self.holds else "FAIL"
        return f"{mark} {self.study} {self.subject}: {self.claim}: {self.number()}"


def as_float(x: Any) -> float:
    """A number from a result file as a float (None -> NaN; "inf" strings as written by strict JSON)."""
    return math.nan if x is None else float(x)


def finding(study: str, subject: str, claim: str, value: Any, lo: Any, hi: Any, holds: Any) -> Finding:
    """A Finding with its numbers as floats (None -> NaN); a claim with a NaN value fails."""

    value, lo, hi = as_float(value), as_float(lo), as_float(hi)
    return Finding(study, subject, claim, value, lo, hi, bool(holds) and not math.isnan(value))


def missing(study: str, path: Path, claim: str = "result file present") -> Finding:
    """The failed claim for a result file the run did not write."""
    return Finding(study, str(path), f"{claim} (missing: run the study first)", math.nan, math.nan, math.nan, False)


def study_claims(study: str) -> Callable[[Path, dict], list[Finding]]:
    module = plugins.study_module(study, "findings")
    if module is None or not hasattr(module, "claims"):
        raise KeyError(f"study {study!r} has no findings checker (biasdrift.{study}.findings.claims)")
    return module.claims


def check(studies: list[str], results: Path, config: dict) -> list[Finding]:
    out: list[Finding] = []
    for study in studies:
        if study not in (config.get("studies") or {}):
            raise KeyError(f"study {study!r} is not enabled in the config (studies.{study})")
        out += study_claims(study)(Path(results), config)
    return out


def markdown(findings: list[Finding]) -> str:
    """The claims as a Markdown table (what the README's demo table is pasted from)."""
    lines = ["| study | about | claim | value [interval] | holds |", "|---|---|---|---|---|"]
    for f in findings:
        interval = "" if math.isnan(f.lo) and math.isnan(f.hi) else f" [{f.lo:+.3f}, {f.hi:+.3f}]"
        lines.append(
            f"| {f.study} | {f.subject} | {f.claim} | {f.value:+.3f}{interval} | {'yes' if f.holds else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def report(findings: list[Finding], json_path: Path | None = None) -> int:
    """Log every claim and a count per study; 0 when all hold (and there are some)."""
    for f in findings:
        print(f.line())
    studies = sorted({f.study for f in findings})
    for study in studies:
        mine = [f for f in findings if f.study == study]
        print(f"{study}: {sum(f.holds for f in mine)} of {len(mine)} claims hold")
    if json_path is not None:
        payload = {
            "all_hold": bool(findings) and all(f.holds for f in findings),
            "findings": [
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(f).items()}
                for f in findings
            ],
        }
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if findings and all(f.holds for f in findings) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("studies", nargs="*", help="studies to check (default: every study the config enables)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the run's results folder")
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"), help="the config that made it")
    parser.add_argument("--json", type=Path, help="also write the claims to this JSON file")
    parser.add_argument("--markdown", type=Path, help="also write them as a Markdown table")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
    studies = args.studies or [s for s in plugins.STUDIES if s in (config.get("studies") or {})]
    try:
        findings = check(studies, args.results, config)
    except KeyError as err:
        parser.error(str(err.args[0]))
    if args.markdown is not None:
        args.markdown.write_text(markdown(findings), encoding="utf-8")
    return report(findings, args.json)


if __name__ == "__main__":
    sys.exit(main())
