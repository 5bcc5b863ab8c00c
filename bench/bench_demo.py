"""The demo tier end to end: `make demo`'s Snakemake run timed from empty results/.

    .venv/bin/python bench/bench_demo.py [--cores 2] [--workdir .bench/demo] [--keep] [-- SNAKEMAKE_ARGS]

Copies the workflow (code and configs, no results) into a fresh folder, runs
`snakemake --cores N` there with config/config.yaml, then checks every study's claims
(`python -m biasdrift.findings`). Writes bench/results/demo.json: the wall time, the job
count, the load average before and after, each study's share (the sum of its jobs' seconds
and CPU seconds from Snakemake's benchmark files; the datasets, tokenizers and pretraining
a study uses count as "models"), the slowest jobs, the critical path of the run as it
happened (the chain of jobs, each the last input of the next to finish), and whether every
claim held. Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import psutil  # noqa: E402

from bench.bench_foundation import machine, save_result  # noqa: E402
from biasdrift.smoke.run import copy_workflow, offline_env  # noqa: E402

SHARED = ("datasets", "tokenizers", "models")


def benchmark_rows(work: Path) -> list[dict]:
    """One row per job that wrote a benchmark file: its path, seconds, CPU seconds and the
    time it finished (the file's mtime)."""
    rows = []
    for path in sorted((work / "benchmarks").rglob("*.tsv")):
        with open(path, newline="") as handle:
            records = list(csv.DictReader(handle, delimiter="\t"))
        if not records:
            continue
        last = records[-1]
        rel = path.relative_to(work / "benchmarks")
        cpu = last.get("cpu_time", "")
        rows.append(
            {
                "job": str(rel.with_suffix("")),
                "study": "models" if rel.parts[0] in SHARED else rel.parts[0],
                "s": float(last["s"]),
                "cpu_s": float(cpu) if cpu not in ("", "-", "NA") else None,
                "end": path.stat().st_mtime,
            }
        )
    return rows


def shares(rows: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "job_s": 0.0, "cpu_s": 0.0})
    for row in rows:
        share = out[row["study"]]
        share["jobs"] += 1
        share["job_s"] = round(share["job_s"] + row["s"], 1)
        share["cpu_s"] = round(share["cpu_s"] + (row["cpu_s"] or 0.0), 1)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["job_s"]))


def critical_path(rows: list[dict], started: float) -> list[dict]:
    """Walk back from the last job to finish: each step is the job that finished last
    before the current one started (an approximation of the run's critical path that
    needs no DAG: on 2 cores a job waits for its last input or for a free core)."""
    rows = sorted(rows, key=lambda r: r["end"])
    if not rows:
        return []
    path, current = [], rows[-1]
    while current is not None:
        begin = current["end"] - current["s"]
        path.append({"job": current["job"], "s": current["s"], "starts_at_s": round(begin - started, 1)})
        before = [r for r in rows if r["end"] <= begin + 0.5]
        current = before[-1] if before else None
    return path[::-1]


def bench_demo(cores: int, workdir: Path, keep: bool, extra: list[str]) -> dict:
    shutil.rmtree(workdir, ignore_errors=True)
    work = copy_workflow(workdir)
    env = offline_env()
    load_before = os.getloadavg()
    started = time.time()
    log = workdir / "snakemake.log"
    main_cpu = 0.0
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", str(cores), *extra],
            cwd=work,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        main = psutil.Process(proc.pid)
        while proc.poll() is None:  # the Snakemake process's own CPU time (scheduling, metadata)
            with contextlib.suppress(psutil.Error):
                times = main.cpu_times()
                main_cpu = times.user + times.system
            time.sleep(1)
    wall = time.time() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()
    text = log.read_text(encoding="utf-8", errors="replace")
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", text)
    findings = subprocess.run(
        [sys.executable, "-m", "biasdrift.findings", "--json", "results/findings.json"],
        cwd=work,
        env={**env, "PYTHONPATH": str(work / "workflow" / "scripts")},
        capture_output=True,
        text=True,
    )
    claims = json.loads((work / "results/findings.json").read_text()) if findings.returncode in (0, 1) else None
    rows = benchmark_rows(work)
    result = {
        "machine": machine(),
        "cores": cores,
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "jobs": int(done[-1][1]) if done else None,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "snakemake_args": extra,
        "job_s_total": round(sum(r["s"] for r in rows), 1),
        "cpu_s_all_processes": round(children.ru_utime + children.ru_stime, 1),
        "cpu_s_snakemake_main": round(main_cpu, 1),
        "shares": shares(rows),
        "slowest_jobs": [{"job": r["job"], "s": r["s"]} for r in sorted(rows, key=lambda r: -r["s"])[:15]],
        "critical_path": critical_path(rows, started),
        "claims_all_hold": None if claims is None else claims["all_hold"],
        "claims_failed": None if claims is None else [f for f in claims["findings"] if not f["holds"]],
        "log": str(log),
    }
    if not keep and proc.returncode == 0:
        shutil.rmtree(work / "results", ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench" / "demo")
    parser.add_argument("--keep", action="store_true", help="keep the run's results/ (default: removed on success)")
    parser.add_argument("snakemake_args", nargs="*", help="passed on to snakemake (after --)")
    args = parser.parse_args()
    result = bench_demo(args.cores, args.workdir.resolve(), args.keep, args.snakemake_args)
    save_result(result, "demo.json")
    if result["returncode"] != 0 or result["claims_all_hold"] is not True:
        sys.exit(1)


if __name__ == "__main__":
    main()
