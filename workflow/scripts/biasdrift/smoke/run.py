"""Run the smoke tier: each study's ``config/smoke/<study>.yaml`` end to end in its own
copy of the workflow (``.smoke/<study>/``), so smoke results never mix with the demo's
``results/``. Results of an earlier run are kept: a second run redoes only what changed.

    PYTHONPATH=workflow/scripts python -m biasdrift.smoke.run [--cores 2] [--dry-run] [study ...]

Writes ``.smoke/summary.json`` (wall seconds, job count and return code per study) and
prints a table; exits non-zero when a study fails, naming its log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from biasdrift.smoke.derive import SMOKE_DIR, studies_with_overrides

REPO = Path(__file__).resolve().parents[4]
# what a researcher's checkout holds (results, logs, .snakemake, .venv stay behind)
WORKFLOW_PARTS = (
    "Snakefile",
    "rules",
    "workflow",
    "config",
    "profiles",
    "resources",
    "environment.yml",
    "tests/config",
)


def copy_workflow(dest: Path, src: Path = REPO) -> Path:
    """Copy the workflow's code and configs (not its results) into ``dest``, replacing
    an older copy's code but keeping its results, logs and Snakemake metadata."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in WORKFLOW_PARTS:
        source, target = src / part, dest / part
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=ignore)
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def offline_env(**extra: str) -> dict[str, str]:
    """The environment of a smoke run: no hub, no token, no telemetry."""
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
        MPLBACKEND="Agg",
        PYTHONHASHSEED="0",
    )
    env.update(extra)
    return env


def snakemake_args(study: str, cores: int, dry_run: bool) -> list[str]:
    args = [sys.executable, "-m", "snakemake", "--cores", str(cores)]
    args += ["--configfile", str(SMOKE_DIR / f"{study}.yaml"), "--replace-workflow-config"]
    args += ["--rerun-incomplete", "--printshellcmds"]
    if dry_run:
        args += ["-n", "--quiet", "rules"]
    return args


def run_study(study: str, workroot: Path, cores: int, dry_run: bool = False) -> dict:
    work = copy_workflow(workroot / study)
    log_path = workroot / f"{study}.log"
    started = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(
            snakemake_args(study, cores, dry_run), cwd=work, env=offline_env(), stdout=log, stderr=subprocess.STDOUT
        )
    wall = time.time() - started
    text = log_path.read_text(encoding="utf-8", errors="replace")
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", text)
    return {
        "study": study,
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "jobs": int(done[-1][1]) if done else None,
        "log": str(log_path),
        "cores": cores,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="*", help="studies to run (default: all with a smoke config)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=REPO / ".smoke")
    parser.add_argument("--dry-run", action="store_true", help="snakemake -n only")
    args = parser.parse_args(argv)
    studies = args.studies or studies_with_overrides(REPO)
    missing = [s for s in studies if not (REPO / SMOKE_DIR / f"{s}.yaml").is_file()]
    if missing:
        parser.error(f"no smoke config for {', '.join(missing)} (known: {', '.join(studies_with_overrides(REPO))})")
    results = []
    for study in studies:
        print(f"== smoke {study} ({'dry run' if args.dry_run else f'{args.cores} cores'})", flush=True)
        result = run_study(study, args.workdir, args.cores, args.dry_run)
        status = "ok" if result["returncode"] == 0 else f"FAILED (see {result['log']})"
        print(f"   {status}: {result['wall_s']:.0f} s, {result['jobs']} jobs", flush=True)
        results.append(result)
    summary = {"studies": results, "total_wall_s": round(sum(r["wall_s"] for r in results), 1)}
    if not args.dry_run:
        (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{'study':<12} {'rc':>3} {'wall s':>8} {'jobs':>5}")
    for r in results:
        print(f"{r['study']:<12} {r['returncode']:>3} {r['wall_s']:>8.0f} {r['jobs'] or '-':>5}")
    print(f"{'total':<12} {'':>3} {summary['total_wall_s']:>8.0f}")
    return 0 if all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
