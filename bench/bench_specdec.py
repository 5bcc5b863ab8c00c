"""Benchmark of study specdec (timings live in bench/, never in tests). `make bench` runs
every bench/bench_*.py; this one alone:

    .venv/bin/python bench/bench_specdec.py                      # demo models if built, else random ones
    .venv/bin/python bench/bench_specdec.py --models gpt2-shape  # random GPT-2 / DistilGPT-2 shapes (GPU)

It times, on the same prompts (the demo templates) and the same (main, assistant) pair:
  * the project's own measuring loop (biasdrift.specdec.decoding.speculative_greedy, which
    also records per-round counts and p/q), against
  * transformers' generate(assistant_model=...) with a constant schedule of K drafts and
    no confidence cut (with the counting streamer), and
  * plain greedy generate of the main model (for reference),
and reports tokens/s and the ratio own / transformers (goal <= 1.2). Results are printed
and written to bench/results/specdec-<models>-<device>.json with the machine they ran on.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

from biasdrift.config import from_schema

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from bench.bench_foundation import machine, save_result  # noqa: E402


def demo_prompts(n: int) -> list[str]:
    import pandas as pd

    from biasdrift.specdec.templates import prompt_of

    frame = pd.read_csv(REPO / "resources/specdec/templates_en.tsv", sep="\t")
    prompts = sorted({prompt_of(t) for t in frame["template_masked"]})
    return prompts[:n]


def load_models(kind: str, device):
    """(main, assistant, tokenizer, description)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

    demo = REPO / "results/models"
    if kind == "demo" and (demo / "specdec-main/model").is_dir():
        tok = AutoTokenizer.from_pretrained(demo / "specdec-main/model")
        main = AutoModelForCausalLM.from_pretrained(demo / "specdec-main/model", dtype=torch.float32)
        assistant = AutoModelForCausalLM.from_pretrained(demo / "specdec-assistant/model", dtype=torch.float32)
        return main.to(device).eval(), assistant.to(device).eval(), tok, "demo models (results/models/specdec-*)"
    sys.path.insert(0, str(REPO / "tests" / "unit"))
    from specdec_helpers import make_tokenizer

    tok = make_tokenizer(Path("/tmp/biasdrift-bench-specdec-tok"), vocab_size=512)
    if kind == "gpt2-shape":  # the real models' shapes, random weights, the tiny tokenizer
        torch.manual_seed(0)
        ids = {"bos_token_id": tok.eos_token_id, "eos_token_id": tok.eos_token_id}
        main = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_layer=12, n_embd=768, n_head=12, **ids))
        assistant = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_layer=6, n_embd=768, n_head=12, **ids))
        # a random assistant never agrees; start it from the main model's first 6 blocks
        assistant.load_state_dict({k: v for k, v in main.state_dict().items() if k in assistant.state_dict()})
        note = "random GPT-2 (12x768) / DistilGPT-2 (6x768) shapes"
    else:
        from biasdrift.models import ModelSize, build_model

        torch.manual_seed(0)
        main = build_model("gpt2", from_schema(ModelSize, layers=2, heads=4, hidden=64, context=64, dropout=0.0), tok)
        assistant = build_model(
            "gpt2", from_schema(ModelSize, layers=1, heads=2, hidden=32, context=64, dropout=0.0), tok
        )
        note = "random demo-sized models (the demo models are not built)"
    for m in (main, assistant):
        m.generation_config.eos_token_id = tok.eos_token_id
    return main.to(device).eval(), assistant.to(device).eval(), tok, note


def timed(func, items, repeats: int) -> tuple[float, list]:
    import torch

    times, out = [], None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = [func(x) for x in items]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def bench(main, assistant, tok, prompts: list[str], k: int, n: int, repeats: int) -> dict:
    from biasdrift.specdec import decoding

    eos, pad = tok.eos_token_id, tok.pad_token_id
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    own = lambda x: decoding.speculative_greedy(main, assistant, x, k, n, eos)  # noqa: E731
    hf = lambda x: decoding.hf_assisted_rounds(main, assistant, x, k, n, eos, pad)  # noqa: E731
    greedy = lambda x: decoding.hf_greedy(main, x, n, eos, pad)  # noqa: E731
    for func in (own, hf, greedy):  # warm-up
        func(ids[0])
    t_own, records = timed(own, ids, repeats)
    t_hf, hf_out = timed(hf, ids, repeats)
    t_greedy, _ = timed(greedy, ids, repeats)
    tokens = sum(r["n_new"] for r in records)
    agree = sum(sizes == [r["emitted"] for r in rec["rounds"]] for (sizes, _), rec in zip(hf_out, records, strict=True))
    return {
        "prompts": len(ids),
        "k": k,
        "n": n,
        "new_tokens": tokens,
        "mean_assistant_share": round(sum(r["n_accepted"] for r in records) / tokens, 4),
        "counts_equal_transformers": f"{agree}/{len(ids)}",
        "own_loop_s": round(t_own, 4),
        "transformers_assisted_s": round(t_hf, 4),
        "plain_greedy_s": round(t_greedy, 4),
        "own_tokens_per_s": round(tokens / t_own, 1),
        "transformers_tokens_per_s": round(tokens / t_hf, 1),
        "ratio_own_over_transformers": round(t_own / t_hf, 3),
        "goal_ratio": 1.2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", choices=["demo", "gpt2-shape"], default="demo")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--prompts", type=int, default=60)
    parser.add_argument("--k", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--identical", action="store_true", help="also time an assistant identical to the main model")
    args = parser.parse_args()

    from biasdrift.runtime import choose_device
    from biasdrift.specdec.decoding import disable_tf32

    disable_tf32()
    device = choose_device(args.device)
    main_model, assistant, tok, note = load_models(args.models, device)
    prompts = demo_prompts(args.prompts)
    runs = {f"K={k}": bench(main_model, assistant, tok, prompts, k, args.n, args.repeats) for k in args.k}
    if args.identical:
        twin = copy.deepcopy(main_model)
        runs |= {
            f"K={k} identical assistant": bench(main_model, twin, tok, prompts, k, args.n, args.repeats) for k in args.k
        }
    result = {"machine": machine(), "device": str(device), "models": note, "runs": runs}
    save_result(result, f"specdec-{args.models}-{device.type}.json")


if __name__ == "__main__":
    main()
