"""Study politune benchmarks (timings live in bench/, never in tests). `make bench` runs
every bench/bench_*.py; this one alone: .venv/bin/python bench/bench_politune.py

politune:
  * DPO and SFT training throughput (optimizer steps/s) with LoRA on the demo-sized tiny
    Llama (hidden 64), one CPU thread;
  * statement probe (statements/s, logprob mode) and held-out pair scoring (pairs/s);
  * with --workflow tiny|demo: wall time of the study's part of that config end to end
    (its datasets, tokenizer, model and every politune rule) in a fresh copy of the
    workflow, and each rule's time from Snakemake's benchmark files.
Results are printed and written to bench/results/politune.json with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from biasdrift.config import from_schema
from biasdrift.runtime import set_threads

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from bench.bench_foundation import machine, save_result  # noqa: E402
from tests.conftest import SNAKEMAKE, TINY, clean_env, copy_workflow  # noqa: E402

TARGETS = ("results/politune/plots/axes.svg", "results/politune/plots/judge.svg")


def bench_components(steps: int) -> dict:

    from biasdrift import corpora
    from biasdrift.politune import adapters, formatting, pairs, preference, probe, train, world
    from biasdrift.politune.tiny import tiny_chat_model
    from biasdrift.training import TrainConfig

    set_threads(1)
    root = Path(tempfile.mkdtemp(prefix="politune-bench-"))
    try:
        template = REPO / "resources" / "politune" / "chat_template.jinja"
        ref = tiny_chat_model(root / "tiny", template, hidden=64)
        raw = root / "raw.csv"
        corpora.generate("politune_preferences", {"n_pairs": 300}, 0).to_csv(raw, index=False)
        pairs.prepare_pairs(
            {"dataset": "raw"},
            {"raw": raw},
            root / "pairs.parquet",
            from_schema(pairs.PairsConfig, heldout_fraction=0.1),
        )
        fmt = from_schema(formatting.FormatConfig)
        lora = from_schema(adapters.LoraSettings, r=8, alpha=16, dropout=0.0)
        from biasdrift.models import load_tokenizer

        tokenizer = formatting.prepare_tokenizer(load_tokenizer(ref), fmt)
        train_rows = formatting.format_pairs(
            tokenizer, fmt, pairs.read_pairs(root / "pairs.parquet", "train").to_dict("records")
        )
        out = {}
        for method, settings in (
            ("dpo", from_schema(train.MethodSettings, max_length=128, warmup_steps=None, loss_type=("sigmoid", "sft"))),
            ("sft", from_schema(train.MethodSettings, max_length=128, warmup_steps=None)),
        ):
            trainer = train.build_trainer(
                method=method,
                model=adapters.load_base(ref, lora, "cpu", for_training=True),
                tokenizer=tokenizer,
                train_rows=train_rows,
                eval_rows=None,
                lora=lora,
                settings=settings,
                seed=0,
                device_type="cpu",
                train_cfg=from_schema(
                    TrainConfig,
                    max_steps=steps,
                    batch_size=8,
                    learning_rate=3e-3,
                    logging_steps=steps,
                    save_steps=10 * steps,
                ),
                scratch_dir=root / method,
            )
            start = time.perf_counter()
            trainer.train()
            out[f"{method}_steps_per_s"] = round(steps / (time.perf_counter() - start), 2)
            model = trainer.model.eval()
        statements = probe.read_statements(REPO / "resources" / "politune" / "statements.tsv")
        cfg = from_schema(probe.ProbeConfig, question=world.RATING_QUESTION, bootstrap=100)
        start = time.perf_counter()
        probe.probe_logprob(model, tokenizer, fmt, statements, cfg, "cpu")
        out["probe_statements_per_s"] = round(len(statements) / (time.perf_counter() - start), 1)
        heldout = pairs.read_pairs(root / "pairs.parquet", "heldout")
        start = time.perf_counter()
        preference.preference_margins(model, tokenizer, fmt, heldout, 0.1, "cpu")
        out["heldout_pairs_per_s"] = round(len(heldout) / (time.perf_counter() - start), 1)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_workflow(config: str, cores: int) -> dict:
    work = copy_workflow(Path(tempfile.mkdtemp(prefix="politune-wf-")))
    args = TINY if config == "tiny" else ()
    try:
        start = time.perf_counter()
        subprocess.run(
            [*SNAKEMAKE, *args, "--cores", str(cores), *TARGETS],
            cwd=work,
            env=clean_env(),
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - start
        rules: dict[str, float] = {}
        for tsv in (work / "benchmarks").rglob("*.tsv"):
            rule = tsv.stem
            seconds = float(tsv.read_text().splitlines()[1].split("\t")[0])
            rules[rule] = round(rules.get(rule, 0.0) + seconds, 1)
        summary = json.loads((work / "results" / "politune" / "summary.json").read_text())
        return {
            "config": config,
            "cores": cores,
            "wall_s": round(wall, 1),
            "rule_seconds": rules,
            "all_checks_passed": summary["all_checks_passed"],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per training benchmark")
    parser.add_argument("--workflow", choices=["none", "tiny", "demo"], default="none")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    result = {"machine": machine(), "politune": bench_components(args.steps)}
    if args.workflow != "none":
        result["workflow"] = bench_workflow(args.workflow, args.cores)
    save_result(result, "politune.json")


if __name__ == "__main__":
    main()
