"""Study circuits benchmark (timings live in bench/, never in tests). `make bench` runs
every bench/bench_*.py; this one alone:

    .venv/bin/python bench/bench_circuits.py                      # CPU, GPT-2 small, fp32
    .venv/bin/python bench/bench_circuits.py --device cuda        # GPU, bf16 (where one is lent)

What it measures, on a randomly initialised GPT-2 small (built from GPT2Config, no
download: 12 layers, 12 heads, 32,491 edges) and one batch of prompt pairs:

  * one plain forward pass over the clean prompts (logits of the last position);
  * EAP over the same batch (corrupted forward, clean forward with split q/k/v inputs,
    one backward, the score products), and the ratio EAP / forward (goal <= 4.5;
    2 forwards + 1 backward is the floor);
  * prompts per second of EAP.

Forward and EAP runs alternate. On CPU the ratio is taken from the median CPU time of the
process (wall time is also recorded): on a shared, loaded machine wall time measures the
neighbours more than the code. Use `--threads 1` there so idle worker threads do not count.

Results go to bench/results/circuits-<device>.json with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import torch  # noqa: E402

from bench.bench_foundation import save_result  # noqa: E402
from biasdrift.circuits import eap  # noqa: E402
from biasdrift.circuits.adapters import adapter_for  # noqa: E402
from biasdrift.circuits.graph import Graph  # noqa: E402

GOAL = 4.5


def machine(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__}
    info["torch_threads"] = torch.get_num_threads()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    info["load_average"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    return info


def prompt_batch(batch_size: int, length: int, vocab: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    clean = [[50256, *torch.randint(0, vocab - 1, (length,), generator=gen).tolist()] for _ in range(batch_size)]
    corrupted = [[c[0], c[1], 123, *c[3:]] for c in clean]  # one token differs, as in the templates
    return eap.make_batches(clean, corrupted, batch_size, pad_id=50256)


def timed(fn, sync) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


def summary(runs: list[tuple[float, float]]) -> dict:
    walls, cpus = zip(*runs, strict=True)
    return {
        "wall_median": round(statistics.median(walls), 4),
        "cpu_median": round(statistics.median(cpus), 4),
        "wall_runs": [round(t, 4) for t in walls],
        "cpu_runs": [round(t, 4) for t in cpus],
    }


def bench(device: torch.device, batch_size: int, length: int, repeats: int) -> dict:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = GPT2LMHeadModel(GPT2Config()).to(device=device, dtype=dtype).eval()
    model.requires_grad_(False)
    adapter = adapter_for(model)
    batches = prompt_batch(batch_size, length, model.config.vocab_size)
    tracer = eap.Tracer(model, adapter)
    batch = batches[0].to(device)

    def metric(logits, _batch):
        return torch.log_softmax(logits.float(), dim=-1)[:, 100]

    def forward():
        with torch.no_grad():
            tracer.run(batch.clean_ids, batch.clean_mask)

    def attribute():
        eap.attribute(model, adapter, batches, metric, show_progress=False)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    forward()
    attribute()  # warm-up
    fwd, eap_runs = [], []
    for _ in range(repeats):  # interleaved: a load change on a shared machine hits both alike
        fwd.append(timed(forward, sync))
        eap_runs.append(timed(attribute, sync))
    fwd_s, eap_s = summary(fwd), summary(eap_runs)
    # the cost ratio: CPU time on CPU (robust on a loaded machine), wall time on a GPU
    key = "wall_median" if device.type == "cuda" else "cpu_median"
    ratio = eap_s[key] / fwd_s[key]
    return {
        "model": "gpt2-small (random init, GPT2Config())",
        "edges": Graph.from_config(model.config).n_edges,
        "dtype": str(dtype),
        "batch_size": batch_size,
        "tokens_per_prompt": length + 1,
        "forward_s": fwd_s,
        "eap_s": eap_s,
        "ratio_from": key,
        "eap_over_forward": round(ratio, 2),
        "eap_over_forward_wall": round(eap_s["wall_median"] / fwd_s["wall_median"], 2),
        "goal": GOAL,
        "meets_goal": ratio <= GOAL,
        "eap_prompts_per_s": round(batch_size / eap_s["wall_median"], 2),
        "eap_prompts_per_cpu_s": round(batch_size / eap_s["cpu_median"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=12, help="tokens per prompt after BOS")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        from biasdrift.runtime import set_threads

        set_threads(args.threads)
    device = torch.device(args.device)
    result = {"machine": machine(device), "circuits": bench(device, args.batch_size, args.length, args.repeats)}
    save_result(result, f"circuits-{args.device}.json")


if __name__ == "__main__":
    main()
