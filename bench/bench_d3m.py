"""d3m benchmarks (timings live in bench/, never in tests). `make bench` runs every
bench/bench_*.py; this one alone: .venv/bin/python bench/bench_d3m.py [--size demo|base]

Throughput of the two attributions on a BERT sequence classifier:
  * TRAK (traker 0.3.2): featurizing the training set (per-example gradients through
    torch.func.vmap + projection) and scoring the queries, examples/s, with the
    projector in use (BasicProjector on CPU, CudaProjector with fast_jl on a GPU);
  * influence functions (kronfluence 1.0.1, EKFAC over every Linear layer): fitting the
    factors (training examples/s) and pairwise scoring (training examples/s for the
    whole query set).
--size demo is the demo tier's model (2 layers, hidden 32, the synthetic world's
vocabulary and lengths); --size base is BERT-base (12 layers, hidden 768, 128 tokens),
meant for a GPU. Weights are random: throughput does not depend on them.
Results are printed and written to bench/results/d3m-<size>.json with the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

from bench_foundation import machine, save_result  # noqa: E402

SIZES = {
    # layers, hidden, heads, intermediate, vocab, tokens, n_train, n_query, proj_dim
    "demo": {
        "layers": 2,
        "hidden": 32,
        "heads": 2,
        "intermediate": 128,
        "vocab": 1000,
        "tokens": 7,
        "n_train": 765,
        "n_query": 320,
        "proj_dim": 256,
        "batch": 64,
    },
    "base": {
        "layers": 12,
        "hidden": 768,
        "heads": 12,
        "intermediate": 3072,
        "vocab": 30522,
        "tokens": 128,
        "n_train": 512,
        "n_query": 128,
        "proj_dim": 2048,
        "batch": 16,
    },
}


def model_and_data(size: dict, device: str):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from biasdrift.d3m.attribution import TensorDataset

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=size["vocab"],
        hidden_size=size["hidden"],
        num_hidden_layers=size["layers"],
        num_attention_heads=size["heads"],
        intermediate_size=size["intermediate"],
        max_position_embeddings=max(32, size["tokens"]),
        attn_implementation="eager",
    )
    model = BertForSequenceClassification(config).eval().to(device)

    def data(n: int, seed: int) -> TensorDataset:
        gen = torch.Generator().manual_seed(seed)
        ids = torch.randint(5, size["vocab"], (n, size["tokens"]), generator=gen)
        return TensorDataset(
            {
                "input_ids": ids,
                "token_type_ids": torch.zeros_like(ids),
                "attention_mask": torch.ones_like(ids),
                "labels": torch.arange(n) % 2,
            }
        )

    return model, data(size["n_train"], 0), data(size["n_query"], 1)


def bench(size_name: str) -> dict:
    import torch

    from biasdrift.config import from_schema
    from biasdrift.d3m import attribution as at

    size = SIZES[size_name]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, train, query = model_and_data(size, device)
    names = ["input_ids", "token_type_ids", "attention_mask"]
    n_params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory(prefix="bench-d3m-") as tmp:
        started = time.perf_counter()
        _, trak = at.trak_scores(
            [model],
            names,
            train,
            query,
            from_schema(at.TrakConfig, proj_dim=size["proj_dim"], batch_size=size["batch"]),
            Path(tmp) / "trak",
            device=device,
        )
        trak_total = time.perf_counter() - started
        model, train, query = model_and_data(size, device)
        started = time.perf_counter()
        _, influence = at.influence_scores(
            model,
            names,
            train,
            query,
            from_schema(at.InfluenceConfig, batch_size=size["batch"]),
            Path(tmp) / "kronfluence",
            device=device,
        )
        if_total = time.perf_counter() - started
    n_train, n_query = size["n_train"], size["n_query"]
    return {
        "size": size_name,
        "device": device,
        "parameters": n_params,
        "n_train": n_train,
        "n_query": n_query,
        "tokens_per_example": size["tokens"],
        "trak": {
            "projector": trak["projector"],
            "proj_dim": trak["proj_dim"],
            "featurize_examples_per_s": round(n_train / trak["seconds"]["featurize"], 1),
            "score_queries_per_s": round(n_query / trak["seconds"]["score"], 1),
            "total_s": round(trak_total, 2),
        },
        "kronfluence": {
            "strategy": "ekfac",
            "tracked_modules": len(influence["tracked_modules"]),
            "factors_examples_per_s": round(n_train / influence["seconds"]["factors"], 1),
            "score_train_examples_per_s": round(n_train / influence["seconds"]["score"], 1),
            "total_s": round(if_total, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="demo")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    import torch

    result = {"machine": {**machine(), "torch_threads": torch.get_num_threads()}, "d3m": bench(args.size)}
    save_result(result, f"d3m-{args.size}.json")


if __name__ == "__main__":
    main()
