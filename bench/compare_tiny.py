"""Are the tiny config's outputs the same at two commits? For refactors that must not
change a result (issue 17's redesign):

    .venv/bin/python bench/compare_tiny.py REF [--work DIR] [--cores 2]

clones REF and the working tree's HEAD into DIR (default /tmp/biasdrift-compare), runs
tests/config/tiny.yaml end to end in each (a run already there is reused: snakemake redoes
nothing) and compares every result file the way the Slurm suite does
(tests/test_slurm.py:compare_results: tensors bit for bit, JSON and pickled
TrainingArguments without volatile keys, tables by value, the rest by bytes; manifests and
SVGs are never compared). Exit 1 when a file differs or is missing at REF.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "workflow" / "scripts")]

from biasdrift.smoke.run import offline_env  # noqa: E402
from tests.test_slurm import compare_results  # noqa: E402

TINY = ["--configfile", "tests/config/tiny.yaml", "--replace-workflow-config"]


def checkout(ref: str, where: Path) -> Path:
    """A clone of this repository at ``ref`` in ``where`` (kept if it is already there)."""
    if not (where / ".git").is_dir():
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(where)], check=True)
    subprocess.run(["git", "-C", str(where), "checkout", "--quiet", "--detach", ref], check=True)
    return where


def run_tiny(work: Path, cores: int) -> None:
    log = work / "compare_tiny.log"
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", *TINY, "--cores", str(cores)],
            cwd=work,
            env=offline_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode:
        raise SystemExit(f"the tiny run in {work} failed: {log}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref", help="the commit to compare HEAD with")
    parser.add_argument("--work", type=Path, default=Path("/tmp/biasdrift-compare"))
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    runs = {}
    for name, ref in (("ref", args.ref), ("head", head.stdout.strip())):
        work = checkout(ref, args.work / name)
        print(f"{name}: {ref} in {work}", flush=True)
        run_tiny(work, args.cores)
        runs[name] = work
    compared, differences = compare_results(runs["head"], runs["ref"])
    print(f"{len(compared)} result files compared, {len(differences)} differ")
    for line in differences:
        print("  " + line)
    return 1 if differences or not compared else 0


if __name__ == "__main__":
    sys.exit(main())
