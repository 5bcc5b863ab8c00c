"""OpenMP's wait policy when more torch threads run than there are cores.

    .venv/bin/python bench/bench_omp_wait.py [--procs 4] [--threads 2] [--steps 1500]

Starts ``--procs`` processes at once, each training a small MLP for ``--steps`` steps on
``--threads`` torch threads, once with OMP_WAIT_POLICY=ACTIVE (threads spin while they wait
for work: libgomp's behaviour here) and once with PASSIVE (they sleep), and prints each
policy's slowest process (also to bench/results/omp_wait.json). Under pytest-xdist the
test suite runs that oversubscribed, so tests/conftest.py sets PASSIVE for its workers.
Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

WORK = """
import time, torch
torch.set_num_threads({threads})
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 64))
opt = torch.optim.AdamW(m.parameters(), 1e-3)
x = torch.randn(512, 64)
t = time.perf_counter()
for _ in range({steps}):
    loss = m(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(time.perf_counter() - t)
"""


def run(policy: str, procs: int, threads: int, steps: int) -> list[float]:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    code = WORK.format(threads=threads, steps=steps)
    started = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(procs)
    ]
    return [float(p.communicate()[0]) for p in started]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    out = {"cores": os.cpu_count(), **vars(args), "load_before": os.getloadavg()[0], "seconds": {}}
    for policy in ("ACTIVE", "PASSIVE"):
        started = time.perf_counter()
        times = run(policy, args.procs, args.threads, args.steps)
        out["seconds"][policy] = {"slowest": round(max(times), 2), "wall": round(time.perf_counter() - started, 2)}
    path = Path(__file__).parent / "results" / "omp_wait.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
