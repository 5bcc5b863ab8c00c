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

Results go to bench/results/circuits-<device>.json with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import torch  # noqa: E402

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


def timed(fn, repeats: int, sync) -> list[float]:
    out = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - start)
    return out


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
    fwd = timed(forward, repeats, sync)
    eap_s = timed(attribute, repeats, sync)
    ratio = statistics.median(eap_s) / statistics.median(fwd)
    return {
        "model": "gpt2-small (random init, GPT2Config())",
        "edges": Graph.from_config(model.config).n_edges,
        "dtype": str(dtype),
        "batch_size": batch_size,
        "tokens_per_prompt": length + 1,
        "forward_s": {"median": round(statistics.median(fwd), 4), "runs": [round(t, 4) for t in fwd]},
        "eap_s": {"median": round(statistics.median(eap_s), 4), "runs": [round(t, 4) for t in eap_s]},
        "eap_over_forward": round(ratio, 2),
        "goal": GOAL,
        "meets_goal": ratio <= GOAL,
        "eap_prompts_per_s": round(batch_size / statistics.median(eap_s), 2),
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
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    result = {"machine": machine(device), "circuits": bench(device, args.batch_size, args.length, args.repeats)}
    out = REPO / "bench" / "results" / f"circuits-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
