"""tinystories benchmarks (timings live in bench/, never in tests).
`make bench` runs every bench/bench_*.py; this one alone:

    .venv/bin/python bench/bench_tinystories.py [--shards 8 --stories 10000 --workers 2]

* pretokenization: the same synthetic corpus and vocabulary, pretokenized by the
  workflow's fast path (process per shard, word-cached batched encoding) and by a
  baseline in the original's style (process per shard, ``sp.encode`` per story, a Python
  list, ``np.array`` at the end). Reports stories/s and tokens/s of both, the speed-up
  (goal >= 2x) and whether the token files are byte-identical (they must be).
* training: tokens/s and model FLOPs utilisation of the real training function (HF
  Trainer loop) on the tiny config on CPU; with CUDA, base30M in bf16 (compiled when
  --compile), beside llama2.c's published speeds (spec 6). The rate is taken between two
  run lengths, so start-up and compilation are excluded.
Results are printed and written to bench/results/tinystories.json with the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from bench.bench_foundation import machine, save_result  # noqa: E402
from biasdrift.config import from_schema  # noqa: E402
from biasdrift.tinystories import corpus, synthetic  # noqa: E402
from biasdrift.tinystories.pretokenize import PretokenizeConfig, pretokenize, record_rng  # noqa: E402
from biasdrift.tinystories.stories import render  # noqa: E402
from biasdrift.tinystories.transforms import DatasetSpec  # noqa: E402
from biasdrift.tinystories.vocab import VocabConfig, train_vocab  # noqa: E402

# llama2.c's published wall-clock claims turned into per-GPU rates (spec 6.2, derived, rough)
LLAMA2C_PEERS = {
    "110M, T=1024, 4x A100": {"tokens_per_s_per_gpu": 76_000, "mfu": 0.19},
    "15M, T=256, 4x A100": {"tokens_per_s_per_gpu": 455_000, "mfu": 0.14},
}


# --------------------------------------------------------------------------- baseline
def _baseline_shard(job: tuple[str, int, str, str]) -> int:
    """The original's process_shard, with the workflow's per-record seeding so that the
    rendered text (and hence the tokens) can be compared: encode story by story."""
    import sentencepiece as spm

    shard_path, shard, out_path, model_file = job
    sp = spm.SentencePieceProcessor(model_file=model_file)
    all_tokens: list[int] = []
    for i, record in enumerate(corpus.load_shard(shard_path)):
        text = render(record, record_rng(0, shard, i))
        if text is None:
            continue
        all_tokens.extend([sp.bos_id(), *sp.encode(text)])
    np.array(all_tokens, dtype=np.uint16).tofile(out_path)
    return len(all_tokens)


def baseline_pretokenize(shard_dir: Path, model_file: Path, out_dir: Path, workers: int) -> int:
    out_dir.mkdir(parents=True)
    jobs = [
        (str(p), i, str(out_dir / f"{p.stem}.bin"), str(model_file))
        for i, p in enumerate(corpus.shard_files(shard_dir))
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(_baseline_shard, jobs))


def bench_pretokenize(shards: int, stories: int, vocab: int, workers: int, repeats: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ts-bench-"))
    try:
        params = from_schema(synthetic.SyntheticParams, n_shards=shards, stories_per_shard=stories, seed=0)
        corpus.synthesize_tarball(params, work / "c.tar.gz")
        corpus.unpack(work / "c.tar.gz", work / "shards", work / "manifest.json")
        train_vocab(
            work / "shards",
            from_schema(VocabConfig, vocab_size=vocab, shards=shards - 1),
            work / "tok.model",
            work / "tok.vocab",
            work / "meta.json",
            threads=workers,
        )
        fast, base = [], []
        for r in range(repeats):
            start = time.perf_counter()
            meta = pretokenize(
                work / "shards",
                work / "tok.model",
                DatasetSpec(),
                from_schema(PretokenizeConfig, seed=0),
                work / f"fast{r}",
                work / f"fast{r}.json",
                workers=workers,
            )
            fast.append(time.perf_counter() - start)
            start = time.perf_counter()
            tokens = baseline_pretokenize(work / "shards", work / "tok.model", work / f"base{r}", workers)
            base.append(time.perf_counter() - start)
        identical = all(
            (work / "fast0" / p.name).read_bytes() == (work / "base0" / p.name).read_bytes()
            for p in sorted((work / "base0").glob("*.bin"))
        )
        n = meta["totals"]["rendered"]
        best_fast, best_base = min(fast), min(base)
        return {
            "stories": n,
            "tokens": meta["totals"]["tokens"],
            "vocab_size": vocab,
            "workers": workers,
            "fast_s": [round(t, 3) for t in fast],
            "baseline_s": [round(t, 3) for t in base],
            "fast_stories_per_s": round(n / best_fast),
            "baseline_stories_per_s": round(n / best_base),
            "fast_tokens_per_s": round(meta["totals"]["tokens"] / best_fast),
            "speedup": round(best_base / best_fast, 2),
            "speedup_goal": 2.0,
            "identical_tokens": identical and tokens == meta["totals"]["tokens"],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- training
def bench_training(
    preset: str,
    overrides: dict,
    block: int,
    batch: int,
    steps: tuple[int, int],
    device: str,
    compile_model: bool,
    threads: int,
) -> dict:
    from biasdrift.tinystories.training import ModelSpec, StoryTrainConfig, train_story_model

    work = Path(tempfile.mkdtemp(prefix="ts-train-"))
    try:
        params = from_schema(synthetic.SyntheticParams, n_shards=3, stories_per_shard=3000, seed=0)
        corpus.synthesize_tarball(params, work / "c.tar.gz")
        corpus.unpack(work / "c.tar.gz", work / "shards", work / "manifest.json")
        vocab = int(overrides.get("vocab_size", 1024))
        train_vocab(
            work / "shards",
            from_schema(VocabConfig, vocab_size=vocab, shards=2),
            work / "tok.model",
            work / "tok.vocab",
            work / "meta.json",
        )
        pretokenize(
            work / "shards",
            work / "tok.model",
            DatasetSpec(),
            from_schema(PretokenizeConfig),
            work / "all",
            work / "all.json",
            workers=2,
        )
        timings = {}
        for n in steps:
            cfg = from_schema(
                StoryTrainConfig,
                max_steps=n,
                batch_size=batch,
                learning_rate=1e-3,
                save_steps=10_000,
                logging_steps=max(1, n // 4),
                block_size=block,
                eval_blocks=0,
                compile=compile_model,
                align_to_bos=False,
            )
            start = time.perf_counter()
            metrics = train_story_model(
                train_dir=work / "all",
                split="train",
                cfg=cfg,
                seed=0,
                device=device,
                out_dir=work / f"m{n}",
                metrics_path=work / f"m{n}.json",
                scratch_dir=work / f".scratch{n}",
                tokenizer_model=work / "tok.model",
                build=from_schema(
                    ModelSpec, preset=preset, overrides={k: v for k, v in overrides.items() if k != "vocab_size"}
                ),
                threads=threads,
            )
            timings[n] = (time.perf_counter() - start, metrics)
        (t1, _), (t2, m2) = timings[steps[0]], timings[steps[1]]
        tokens_per_step = m2["tokens_per_step"]
        rate = (steps[1] - steps[0]) * tokens_per_step / (t2 - t1)
        peak = None
        if device == "cuda":
            from biasdrift.tinystories.training import device_peak_flops

            peak = device_peak_flops(__import__("torch").device("cuda"))
        return {
            "preset": preset,
            "overrides": overrides,
            "device": device,
            "compile": compile_model,
            "tokens_per_step": tokens_per_step,
            "tokens_per_s": round(rate),
            "flops_per_token": m2["flops_per_token"],
            "mfu": round(rate * m2["flops_per_token"] / peak, 4) if peak else None,
            "mfu_goal_h100": 0.35,
            "steps": list(steps),
            "wall_s": [round(t1, 2), round(t2, 2)],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--stories", type=int, default=10_000, help="stories per shard")
    parser.add_argument("--vocab", type=int, default=1024, help="the synthetic corpus supports <= ~1900")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile on CUDA")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    import torch

    random.seed(0)
    result = {"machine": machine(), "llama2c_peers": LLAMA2C_PEERS}
    result["pretokenize"] = bench_pretokenize(args.shards, args.stories, args.vocab, args.workers, args.repeats)
    print(json.dumps(result["pretokenize"], indent=2), flush=True)
    if not args.skip_training:
        result["training_cpu_tiny"] = bench_training(
            "tiny", {"vocab_size": 1024, "dropout": 0.0}, 256, 16, (5, 25), "cpu", False, args.workers
        )
        print(json.dumps(result["training_cpu_tiny"], indent=2), flush=True)
        if torch.cuda.is_available():
            result["training_cuda_base30M"] = bench_training(
                "base30M", {"vocab_size": 1024, "dropout": 0.0}, 256, 128, (20, 120), "cuda", args.compile, 8
            )
        else:
            result["training_cuda_base30M"] = "not measured: no CUDA device"
    save_result(result, "tinystories.json")


if __name__ == "__main__":
    main()
