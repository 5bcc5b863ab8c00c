"""Rule evaluate_politune: one model state (the base, or base + the adapter of one run
at one checkpoint) loaded once and put through every probe:

* ``statements.parquet``: the statement probe's answers (one row per statement and
  sample, with the statement's compass weights w0..w3 when ``probe.compass`` is set;
  empty when no statements are configured);
* ``answers.parquet``: answers to the free-text prompts (empty when none are configured);
  the judge scores them in rule judge_answers;
* ``preferences.parquet``: held-out pairs with log-probabilities and margins: the run's
  own side for a checkpoint, every side for the base.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from biasdrift.data import DataError
from biasdrift.politune.adapters import LoraSettings, load_policy
from biasdrift.politune.formatting import FormatConfig, prepare_tokenizer, render_prompt
from biasdrift.politune.judge import read_prompts
from biasdrift.politune.pairs import read_pairs
from biasdrift.politune.preference import preference_margins
from biasdrift.politune.probe import GenerationConfig, ProbeConfig, generate, read_statements, run_probe
from biasdrift.runtime import atomic_path

log = logging.getLogger(__name__)

STATEMENT_COLUMNS = ["id", "axis", "direction", "sign", "sample", "response", "choice", "value", "parse_method"]
ANSWER_COLUMNS = ["prompt_id", "sample", "response"]
PREFERENCE_COLUMNS = [
    "side",
    "prompt",
    "logp_chosen",
    "logp_rejected",
    "ref_logp_chosen",
    "ref_logp_rejected",
    "raw_margin",
    "margin",
    "correct",
    "raw_correct",
]


def adapter_subdir(step: str) -> str | None:
    """The adapter folder of a checkpoint step (None for the base)."""
    if step == "base":
        return None
    return "final" if step == "final" else f"step-{step}"


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def answer_prompts(model, tokenizer, fmt, prompts: pd.DataFrame, gen: GenerationConfig, seed, device, batch_size):
    texts = [render_prompt(tokenizer, fmt, p) for p in prompts["prompt"]]
    samples = generate(model, tokenizer, texts, gen, seed, device, batch_size)
    rows = [
        {"prompt_id": pid, "sample": k, "response": answer}
        for k, answers in enumerate(samples)
        for pid, answer in zip(prompts["id"], answers, strict=True)
    ]
    return pd.DataFrame(rows, columns=ANSWER_COLUMNS)


def evaluate_state(
    *,
    ref: dict[str, Any],
    state: str,
    adapter_dir: str | Path | None,
    lora: LoraSettings,
    fmt: FormatConfig,
    statements_path: str | Path | None,
    prompts_path: str | Path | None,
    pairs_paths: dict[str, str | Path],
    probe: ProbeConfig,
    free_text: GenerationConfig,
    beta: float,
    seed: int,
    device,
    out: dict[str, str | Path],
) -> dict[str, Any]:
    """Write ``out['statements']``, ``out['answers']`` and ``out['preferences']``."""
    # the inputs are checked before the model is loaded
    statement_table = None if statements_path is None else read_statements(statements_path, probe.compass)
    prompt_table = None if prompts_path is None else read_prompts(prompts_path)
    model, tokenizer = load_policy(ref, adapter_dir, lora, device)
    prepare_tokenizer(tokenizer, fmt, f"model {ref.get('alias')!r}")
    record: dict[str, Any] = {"state": state}

    if statement_table is not None:
        result = run_probe(model, tokenizer, fmt, statement_table, probe, seed, device)
        statements = result["responses"]
        record["axes"] = result["axes"].to_dict("records")
        if "compass" in result:
            record["compass"] = result["compass"]
    else:
        log.warning("no statements configured (studies.politune.probe.statements): statement probe skipped")
        statements = pd.DataFrame(columns=STATEMENT_COLUMNS)
    write_table(statements, out["statements"])

    if prompt_table is not None:
        answers = answer_prompts(model, tokenizer, fmt, prompt_table, free_text, seed, device, probe.batch_size)
    else:
        answers = pd.DataFrame(columns=ANSWER_COLUMNS)
    write_table(answers, out["answers"])

    frames = []
    for side, path in pairs_paths.items():
        try:
            heldout = read_pairs(path, "heldout").assign(side=side)
        except DataError:
            log.warning("%s has no held-out pairs (data.heldout_fraction is 0): no preference accuracy", path)
            continue
        frames.append(preference_margins(model, tokenizer, fmt, heldout, beta, device, probe.batch_size))
    preferences = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PREFERENCE_COLUMNS)
    write_table(preferences, out["preferences"])
    if frames:
        correct = preferences["correct"].dropna()
        record["heldout_accuracy"] = float(correct.mean()) if len(correct) else None
        record["raw_accuracy"] = float(preferences["raw_correct"].mean())
    log.info("state %s: %s", state, record)
    return record
