"""Foundation benchmarks (timings live in bench/, never in tests). `make bench` runs
every bench/bench_*.py; this one alone: .venv/bin/python bench/bench_foundation.py

foundation:
  * no-op rerun: wall time of `snakemake` right after a complete run (goal < 10 s);
  * pretraining throughput of each tiny architecture (optimizer steps/s, tokens/s).
Results are printed and written to bench/results/<name>.json with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from tests.conftest import SNAKEMAKE, TINY, clean_env, copy_workflow  # noqa: E402


def save_result(result: dict, filename: str) -> Path:
    """Write a benchmark's result to bench/results/<filename> (JSON) and print it."""
    out = REPO / "bench" / "results" / filename
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(REPO)}")
    return out


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=clean_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def bench_foundation(config: tuple[str, ...], cores: int, repeats: int) -> dict:
    work = copy_workflow(Path(tempfile.mkdtemp(prefix="biasdrift-bench-")))
    try:
        full = timed([*SNAKEMAKE, *config, "--cores", str(cores)], work)
        noop = [timed([*SNAKEMAKE, *config, "--cores", str(cores)], work) for _ in range(repeats)]
        throughput = {}
        for metrics in sorted((work / "results" / "models").glob("*/train_metrics.json")):
            data = json.loads(metrics.read_text())
            summary = next(e for e in data["log_history"] if "train_steps_per_second" in e)
            cfg = data["train_config"]
            tokens_per_step = cfg["train"]["batch_size"] * cfg["train"]["grad_accum"] * cfg["train"]["block_size"]
            throughput[metrics.parent.name] = {
                "arch": cfg["arch"],
                "steps_per_s": summary["train_steps_per_second"],
                "tokens_per_s": round(summary["train_steps_per_second"] * tokens_per_step),
            }
        return {
            "full_run_s": round(full, 2),
            "noop_rerun_s": {"median": round(statistics.median(noop), 2), "max": round(max(noop), 2), "runs": noop},
            "noop_goal_s": 10,
            "pretraining": throughput,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=["tiny", "demo"], default="tiny", help="tiny = tests/config/tiny.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = TINY if args.config == "tiny" else ()
    result = {
        "machine": machine(),
        "config": args.config,
        "foundation": bench_foundation(config, args.cores, args.repeats),
    }
    save_result(result, f"foundation-{args.config}.json")


if __name__ == "__main__":
    main()
