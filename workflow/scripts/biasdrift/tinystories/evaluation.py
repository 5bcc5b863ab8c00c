"""Evaluation of one story-model checkpoint (rule ``evaluate_story_model``) and linear
probes (rule ``probe_story_model``).

* **Losses** on the test shard of the feature-specific datasets: task (stories with the
  feature, prompts asking for it), no-task (stories without it) and adversarial (prompts
  ask for it, stories lack it); mean next-token loss over windows that start at an
  example's BOS.
* **Feature rates**: stories sampled (KV cache, temperature 1, batched) from held-out
  prompts. For each feature G the prompts come from test records *without* G with G
  added to the Features line (so neither the Sentence nor the Summary can leak it);
  "unrequested" prompts are the same records unchanged. A story shows a feature if the
  detector says so: the LLM judge of :mod:`~biasdrift.tinystories.judge` when one is
  configured (the paper tier; unparsed replies are counted apart, never as an answer),
  else the marker rules of :mod:`~biasdrift.tinystories.stories` (exact on the
  synthetic corpus). With a judge, the marker rates and the agreement of the two
  detectors (per feature: both rates, agreement, Cohen's kappa) are reported beside.
  Rates carry Wilson 95% intervals.
* **Marker log-probability** (sampling-free): mean per-token log-probability of the
  sentence holding the feature's marker in held-out true stories with the feature,
  given the prompt and the story up to that sentence.
* **Probes**: per layer, a logistic regression of each feature on the mean of the last
  10 positions' hidden states of the story alone (instruction lines removed).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biasdrift.runtime import progress, set_threads
from biasdrift.tinystories.corpus import load_shard, shard_files
from biasdrift.tinystories.judge import agreement, load_judge
from biasdrift.tinystories.pretokenize import record_rng
from biasdrift.tinystories.stories import FEATURES, cut_story, detect, marker_span, render, render_prompt
from biasdrift.tinystories.transforms import parse_subset

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Schema: ``studies.tinystories.evaluation``."""

    prompts_per_feature: int = field(default=256, metadata={"help": "Sampled stories per feature and condition."})
    max_new_tokens: int = field(default=256, metadata={"help": "Tokens sampled per story at most."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (the original: 1.0)."})
    top_k: int | None = field(default=None, metadata={"help": "Top-k sampling (None = full distribution)."})
    batch_size: int = field(default=128, metadata={"help": "Prompts sampled together."})
    loss_windows: int = field(default=64, metadata={"help": "Test windows per loss (0 = skip losses)."})
    block_size: int = field(default=256, metadata={"help": "Tokens per loss window."})
    marker_stories: int = field(default=128, metadata={"help": "Held-out stories for the marker log-probability."})
    features: list[str] = field(
        default_factory=lambda: list(FEATURES), metadata={"help": "Features whose rates are measured."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of prompt rendering and of sampling."})
    instruction_subset: str = field(default="", metadata={"help": "Instruction lines of the prompts (as trained)."})


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(hits: list[bool | None]) -> dict[str, Any]:
    """k of n with its Wilson interval; None (an unparsed judge reply) is counted in
    ``unparsed`` and is neither a hit nor a miss."""
    parsed = [bool(h) for h in hits if h is not None]
    k, n = sum(parsed), len(parsed)
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "unparsed": len(hits) - n, "rate": k / n if n else math.nan, "lo": lo, "hi": hi}


# --------------------------------------------------------------------------- prompts
def feature_prompts(
    records: list[dict], feature: str, requested: bool, n: int, seed: int, subset: str = ""
) -> list[dict[str, Any]]:
    """Up to ``n`` prompts from records without ``feature`` (the first ones, in shard
    order), with the feature added to the Features line when ``requested``."""
    out = []
    for i, record in enumerate(records):
        if len(out) == n:
            break
        features = record["instruction"]["features"]
        if feature in features:
            continue
        wanted = [*features, feature] if requested else list(features)
        changed = {**record, "instruction": {**record["instruction"], "features": wanted}}
        prompt = render_prompt(changed, record_rng(seed, 0, i), parse_subset(subset))
        if prompt is not None:
            out.append({"index": i, "feature": feature, "requested": requested, "prompt": prompt})
    return out


# --------------------------------------------------------------------------- sampling
def sample(model, tokenizer, prompts: list[str], cfg: EvalConfig, device) -> list[str]:
    """Continuations of ``prompts`` (text after the prompt, cut before the next
    example's prompt): batched, left-padded, KV cache, stop at BOS / EOS."""
    import torch

    model.eval()
    limit = model.config.max_seq_len
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    stops = torch.tensor([tokenizer.bos_id, 2], device=device)
    texts: list[str] = []
    for start in progress(range(0, len(prompts), cfg.batch_size), desc="sample", unit="batch"):
        encoded = [tokenizer.encode(p) for p in prompts[start : start + cfg.batch_size]]
        width = max(len(e) for e in encoded)
        new = min(cfg.max_new_tokens, limit - width)
        if new <= 0:
            raise ValueError(f"prompts of {width} tokens leave no room in max_seq_len={limit}")
        ids = torch.zeros((len(encoded), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, e in enumerate(encoded):
            ids[row, width - len(e) :] = torch.tensor(e)
            mask[row, width - len(e) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        out = torch.empty((len(encoded), 0), dtype=torch.long, device=device)
        done = torch.zeros(len(encoded), dtype=torch.bool, device=device)
        cache, step_ids = None, ids
        with torch.inference_mode():
            for _ in range(new):
                result = model(step_ids, attention_mask=mask, past_key_values=cache, use_cache=True, logits_to_keep=1)
                cache = result.past_key_values
                logits = result.logits[:, -1].float() / max(cfg.temperature, 1e-6)
                if cfg.top_k:
                    kth = torch.topk(logits, min(cfg.top_k, logits.shape[-1])).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, -math.inf)
                nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)  # [B, 1]
                nxt = torch.where(done[:, None], torch.ones_like(nxt), nxt)
                out = torch.cat((out, nxt), dim=1)
                done |= torch.isin(nxt[:, 0], stops)
                if bool(done.all()):
                    break
                step_ids = nxt
                mask = torch.cat((mask, torch.ones_like(nxt)), dim=1)
        for row in out.tolist():
            cut = next((i for i, t in enumerate(row) if t in (tokenizer.bos_id, 2)), len(row))
            texts.append(cut_story(tokenizer.decode(row[:cut])))
    return texts


# --------------------------------------------------------------------------- detectors
def marker_detector(stories: list[str], features: list[str]) -> list[bool]:
    """The rule-based detector: does each story show the feature asked about?"""
    return [detect(s)[f] for s, f in zip(stories, features, strict=True)]


def feature_rates(
    model, tokenizer, records: list[dict], cfg: EvalConfig, device, deleted: str, judge=None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Rates of each feature when requested, and of ``deleted`` when not requested.

    Without a judge the marker rules decide. With one (a :class:`~.judge.LMJudge`), it
    rates every sampled story for every feature of ``cfg.features``; its verdict on
    the feature asked for decides, unparsed replies are counted apart (``unparsed``)
    and left out of the rate, the marker rates are kept beside and ``agreement``
    compares the two detectors per feature over all judged pairs."""
    n, seed, subset = cfg.prompts_per_feature, cfg.seed, cfg.instruction_subset
    prompts = [p for f in cfg.features for p in feature_prompts(records, f, True, n, seed, subset)]
    prompts += feature_prompts(records, deleted, False, n, seed, subset)
    stories = sample(model, tokenizer, [p["prompt"] for p in prompts], cfg, device)
    rows = []
    for p, story in zip(prompts, stories, strict=True):
        found = detect(story)
        rows.append({**p, "story": story, "detected": [f for f, hit in found.items() if hit],
                     "markers": found[p["feature"]]})  # fmt: skip
    if judge is not None:
        pairs = [(i, f) for i in range(len(rows)) for f in cfg.features]
        verdicts, replies = judge([rows[i]["story"] for i, _ in pairs], [f for _, f in pairs])
        for row in rows:
            row["judge"], row["judge_replies"] = {}, {}
        for (i, f), verdict, reply in zip(pairs, verdicts, replies, strict=True):
            rows[i]["judge"][f], rows[i]["judge_replies"][f] = verdict, reply
    for row in rows:
        row["shows_feature"] = row["judge"][row["feature"]] if judge is not None else row["markers"]
    rates: dict[str, Any] = {"requested": {}, "unrequested": {}}
    marker_rates: dict[str, Any] = {"requested": {}, "unrequested": {}}
    for table, key in ((rates, "shows_feature"), (marker_rates, "markers")):
        for f in cfg.features:
            table["requested"][f] = rate([r[key] for r in rows if r["feature"] == f and r["requested"]])
        table["unrequested"][deleted] = rate([r[key] for r in rows if r["feature"] == deleted and not r["requested"]])
    detector = "judge" if judge is not None else "markers"
    return {**rates, "markers": marker_rates, "detector": detector}, rows


# --------------------------------------------------------------------------- losses
def window_loss(model, windows, device, batch_size: int = 32) -> float:
    """Mean next-token cross-entropy over every window (equal-length windows)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = torch.stack([windows[i]["input_ids"] for i in range(start, min(start + batch_size, len(windows)))])
            batch = batch.to(device)
            loss = model(batch, labels=batch).loss
            n = batch.shape[0] * (batch.shape[1] - 1)
            total, count = total + float(loss) * n, count + n
    return total / count


def test_losses(model, token_dirs: dict[str, str | Path], cfg: EvalConfig, device) -> dict[str, float]:
    from biasdrift.tinystories.data import windows_for

    if not cfg.loss_windows:
        return {}
    block = min(cfg.block_size, model.config.max_seq_len)
    return {
        name: window_loss(
            model, windows_for(path, "test", block, max_windows=cfg.loss_windows, align_to_bos=True), device
        )
        for name, path in token_dirs.items()
    }


def marker_logprob(
    model, tokenizer, records: list[dict], feature: str, n: int, seed: int, device, subset: str = ""
) -> dict[str, Any]:
    """Mean per-token log-probability of the marker sentence of ``feature`` in the first
    ``n`` test stories that have it, given everything before it."""
    import torch

    model.eval()
    values = []
    limit = model.config.max_seq_len
    for i, record in enumerate(records):
        if len(values) == n:
            break
        if feature not in record["instruction"]["features"]:
            continue
        text = render(record, record_rng(seed, 0, i), parse_subset(subset))
        if text is None:
            continue
        story_start = text.rindex("Story: ") + len("Story: ")
        span = marker_span(text[story_start:], feature)
        if span is None:
            continue
        before = tokenizer.encode(text[: story_start + span[0]])
        ids = tokenizer.encode(text[: story_start + span[1]])
        if ids[: len(before)] != before or len(ids) == len(before) or len(ids) > limit:
            continue  # the span does not start on a token boundary, or does not fit
        inside = range(len(before), len(ids))
        with torch.inference_mode():
            logits = model(torch.tensor([ids], device=device)).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        values.append(float(np.mean([logp[k - 1, ids[k]].item() for k in inside])))
    return {"mean": float(np.mean(values)) if values else math.nan, "n": len(values)}


def evaluate_checkpoint(
    model,
    tokenizer,
    shard_dir: str | Path,
    token_dirs: dict[str, str | Path],
    cfg: EvalConfig,
    deleted: str,
    device,
    judge=None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every metric of one checkpoint, and the sampled stories."""
    records = load_shard(shard_files(shard_dir)[0])
    rates, rows = feature_rates(model, tokenizer, records, cfg, device, deleted, judge)
    result = {
        "losses": test_losses(model, token_dirs, cfg, device),
        "rates": rates,
        "agreement": agreement(rows, cfg.features) if judge is not None else None,
        "marker_logprob": {
            deleted: marker_logprob(
                model, tokenizer, records, deleted, cfg.marker_stories, cfg.seed, device, cfg.instruction_subset
            )
        },
    }
    return result, rows


# --------------------------------------------------------------------------- probes
@dataclass
class ProbeConfig:
    """Schema: ``studies.tinystories.probes``."""

    train_stories: int = field(default=2000, metadata={"help": "Stories (from training shard 1) to fit probes on."})
    test_stories: int = field(default=1000, metadata={"help": "Stories (from test shard 0) to score probes on."})
    last_positions: int = field(default=10, metadata={"help": "Hidden states averaged: the last N positions."})
    batch_size: int = field(default=64, metadata={"help": "Stories per forward pass."})


def story_features(model, tokenizer, records: list[dict], cfg: ProbeConfig, device) -> np.ndarray:
    """[layers + 1, stories, dim]: the mean of the last positions' hidden states of
    BOS + story (right-padded; causal attention never sees the padding)."""
    import torch

    model.eval()
    limit = model.config.max_seq_len
    chunks = []
    for start in range(0, len(records), cfg.batch_size):
        encoded = [tokenizer.encode(r["story"].strip())[:limit] for r in records[start : start + cfg.batch_size]]
        width = max(len(e) for e in encoded)
        ids = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e)
        with torch.inference_mode():
            hidden = model(ids.to(device), output_hidden_states=True, logits_to_keep=1).hidden_states
        stacked = torch.stack(hidden).float()  # [layers + 1, B, T, dim]
        pooled = [
            stacked[:, row, max(0, len(e) - cfg.last_positions) : len(e)].mean(1) for row, e in enumerate(encoded)
        ]
        chunks.append(torch.stack(pooled, dim=1).cpu().numpy())
    return np.concatenate(chunks, axis=1)


def fit_probes(model, tokenizer, shard_dir: str | Path, cfg: ProbeConfig, device, seed: int) -> dict[str, Any]:
    """Balanced test accuracy of a logistic-regression probe per (layer, feature)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    files = shard_files(shard_dir)
    train = [r for r in load_shard(files[1]) if r["story"].strip()][: cfg.train_stories]
    test = [r for r in load_shard(files[0]) if r["story"].strip()][: cfg.test_stories]
    x_train, x_test = (story_features(model, tokenizer, s, cfg, device) for s in (train, test))
    rows = []
    for feature in FEATURES:
        y_train = np.array([feature in r["instruction"]["features"] for r in train])
        y_test = np.array([feature in r["instruction"]["features"] for r in test])
        if y_train.all() or not y_train.any() or y_test.all() or not y_test.any():
            log.warning("probe %s: one class only; skipped", feature)
            continue
        for layer in range(x_train.shape[0]):
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
            clf.fit(x_train[layer], y_train)
            score = balanced_accuracy_score(y_test, clf.predict(x_test[layer]))
            rows.append({"feature": feature, "layer": layer, "balanced_accuracy": float(score)})
    return {"probes": rows, "train_stories": len(train), "test_stories": len(test)}


# --------------------------------------------------------------------------- rules
EVAL_ONLY_KEYS = ("eval_sets", "features", "recovery_features", "judge", "marker_detector_on_real_stories")


def eval_config(
    evaluation: dict[str, Any], block_size: int, features: list[str], instruction_subset: str = ""
) -> EvalConfig:
    from biasdrift.training import config_from_dict

    values = {k: v for k, v in evaluation.items() if k not in EVAL_ONLY_KEYS}
    return config_from_dict(
        EvalConfig,
        values,
        "studies.tinystories.evaluation",
        block_size=block_size,
        features=list(features),
        instruction_subset=instruction_subset,
    )


def load_story_model(model_dir: str | Path, device):
    """A saved llama2c model through the foundation's loader (fp32, eval mode)."""
    import biasdrift.tinystories.architectures  # noqa: F401 - registers llama2c
    from biasdrift.models import load_model

    model = load_model({"alias": f"tinystories:{model_dir}", "source": "path", "path": str(model_dir)}, device=device)
    return model.eval()


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    import json

    from biasdrift.runtime import write_text

    write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def _headline(result: dict[str, Any], feature: str) -> dict[str, Any]:
    requested = result["rates"]["requested"][feature]
    return {f"{feature}_rate_requested": requested["rate"], "losses": result["losses"]}


def evaluate_model(
    *,
    model_dir,
    shard_dir,
    tokenizer_model,
    eval_sets,
    evaluation,
    probes,
    block_size,
    feature,
    device,
    threads,
    out_eval,
    out_probes,
    out_generations,
    instruction_subset: str = "",
    judge: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rule evaluate_story_model: every metric of one base or deletion model, and its probes."""

    from biasdrift.runtime import write_json
    from biasdrift.tinystories.vocab import StoryTokenizer

    set_threads(threads)
    cfg = eval_config(evaluation, block_size, evaluation["features"], instruction_subset)
    probe_cfg = ProbeConfig(**probes)
    model, tokenizer = load_story_model(model_dir, device), StoryTokenizer(tokenizer_model)
    result, rows = evaluate_checkpoint(
        model, tokenizer, shard_dir, eval_sets, cfg, feature, device, load_judge(judge, device)
    )
    probe_result = fit_probes(model, tokenizer, shard_dir, probe_cfg, device, cfg.seed)
    write_json(out_eval, result)
    write_json(out_probes, probe_result)
    write_jsonl(out_generations, rows)
    log.info("evaluated %s: %s", model_dir, _headline(result, feature))
    return _headline(result, feature)


def evaluate_recovery(
    *,
    checkpoints: dict[int, str],
    shard_dir,
    tokenizer_model,
    eval_sets,
    evaluation,
    block_size,
    feature,
    device,
    threads,
    out_eval,
    out_generations,
    instruction_subset: str = "",
    judge: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rule evaluate_recovery: the metrics of every checkpoint of one recovery run."""

    from biasdrift.runtime import write_json
    from biasdrift.tinystories.vocab import StoryTokenizer

    set_threads(threads)
    cfg = eval_config(evaluation, block_size, evaluation["recovery_features"], instruction_subset)
    tokenizer, judged_by = StoryTokenizer(tokenizer_model), load_judge(judge, device)
    steps, all_rows = {}, []
    for step, path in sorted(checkpoints.items()):
        model = load_story_model(path, device)
        result, rows = evaluate_checkpoint(model, tokenizer, shard_dir, eval_sets, cfg, feature, device, judged_by)
        steps[str(step)] = result
        all_rows += [{"step": step, **r} for r in rows]
        log.info("step %d: %s", step, _headline(result, feature))
    write_json(out_eval, {"steps": steps})
    write_jsonl(out_generations, all_rows)
    return {step: _headline(r, feature) for step, r in steps.items()}
