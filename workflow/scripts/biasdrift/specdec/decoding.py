"""Greedy speculative decoding measured by the project's own draft-and-verify loop
(specs/specdec.md §4), with a cross-check through transformers' assisted generation.

Per round the assistant drafts ``kk = min(K, remaining − 1)`` tokens greedily, the main
model scores prompt + draft in one forward, the leading run of drafts equal to the main
model's argmax is accepted, and the main model's token after it is emitted too (a
correction, or a bonus when every draft matched). The output is therefore exactly the main
model's greedy decoding; only the number of main-model calls depends on the assistant.
An EOS ends generation and, as in transformers, counts as the main model's token.

Both models keep a KV cache that is cropped back to the accepted prefix after each round.
Everything runs in float32 (TF32 off): near-ties between the top two logits are logged as
``min_top2_margin`` rather than trusted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from biasdrift.runtime import progress
from biasdrift.specdec.pairing import SpecdecError

log = logging.getLogger(__name__)


@dataclass
class DecodeConfig:
    SCHEMA: ClassVar[str] = "studies.specdec.decode"  # the schema section it mirrors: its defaults
    k: int = field(metadata={"help": "Draft length K (tokens the assistant proposes per round)."})
    n: int = field(metadata={"help": "Maximum new tokens N."})
    suppress_eos: bool = field(metadata={"help": "Mask EOS in both models (always N tokens)."})
    check_greedy: bool = field(metadata={"help": "Compare with the main model's plain greedy generate."})
    hf_check_prompts: int = field(
        metadata={"help": "Prompts cross-checked with transformers' assisted generate (0 = none)."}
    )
    near_tie_margin: float = field(
        metadata={"help": "Top-2 logit gap below which a disagreement may be numerical noise."}
    )

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"draft length k must be >= 1, got {self.k}")
        if self.n < 1:
            raise ValueError(f"max new tokens n must be >= 1, got {self.n}")


# --------------------------------------------------------------------------- models
def disable_tf32() -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def context_length(model) -> int | None:
    cfg = model.config
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, name, None)
        if isinstance(value, int):
            return value
    return None


def _mask_eos(logits, eos_id: int | None, suppress: bool):
    if suppress and eos_id is not None:
        logits[..., eos_id] = -math.inf
    return logits


def _forward(model, cache, tokens: list[int], eos_id: int | None, suppress: bool):
    """float32 logits [len(tokens), V] of ``tokens`` appended to what ``cache`` holds."""
    import torch

    ids = torch.tensor([tokens], dtype=torch.long, device=model.device)
    out = model(input_ids=ids, past_key_values=cache, use_cache=True)
    return _mask_eos(out.logits[0].float(), eos_id, suppress)


def _crop(cache, length: int) -> int:
    """Crop ``cache`` to its first ``length`` positions; return its new length."""
    current = cache.get_seq_length()
    if current > length:
        cache.crop(-(current - length))
        return length
    return current


# --------------------------------------------------------------------------- the loop
def check_request(main, assistant, prompt_ids: Sequence[int], k: int, n: int) -> None:
    """K, N and the prompt fit both models (raises before any forward)."""
    if k < 1 or n < 1:
        raise ValueError(f"need k >= 1 and n >= 1, got k={k}, n={n}")
    if not prompt_ids:
        raise SpecdecError("empty prompt")
    for model in (main, assistant):
        limit = context_length(model)
        if limit is not None and len(prompt_ids) + n > limit:
            raise SpecdecError(f"prompt of {len(prompt_ids)} tokens + {n} new exceeds the model context of {limit}")


def draft_tokens(assistant, cache, seq: list[int], cached: int, kk: int, eos_id, suppress_eos: bool, pick):
    """Up to ``kk`` assistant tokens after ``seq`` (``cache`` holds its first ``cached``),
    each chosen from the assistant's logits row by ``pick(row) -> (token, kept)``; drafting
    stops after an EOS. Returns (tokens, the kept values, the cache's new length)."""
    draft: list[int] = []
    kept = []
    pending = seq[cached:]
    for _ in range(kk):
        row = _forward(assistant, cache, pending, eos_id, suppress_eos)[-1]
        cached += len(pending)
        token, keep = pick(row)
        draft.append(token)
        kept.append(keep)
        if eos_id is not None and token == eos_id:
            break
        pending = [token]
    return draft, kept, cached


def speculative_greedy(
    main,
    assistant,
    prompt_ids: Sequence[int],
    k: int,
    n: int,
    eos_id: int | None = None,
    suppress_eos: bool = False,
) -> dict[str, Any]:
    """Greedy draft-and-verify for one prompt (batch size 1). Returns the new token ids
    and per-round counts: ``drafted`` (≤ K), ``accepted`` (≤ drafted), ``emitted``
    (= accepted + 1), and for the judged drafts (up to and including the first
    rejection) the main and assistant probabilities ``p`` and ``q`` at temperature 1."""
    import torch
    from transformers import DynamicCache

    check_request(main, assistant, prompt_ids, k, n)
    seq = list(prompt_ids)
    start = len(seq)
    main_cache, asst_cache = DynamicCache(), DynamicCache()
    main_len = asst_len = 0
    rounds: list[dict[str, Any]] = []
    stopped = False
    with torch.inference_mode():
        while len(seq) - start < n and not stopped:
            budget = n - (len(seq) - start)
            kk = min(k, budget - 1)  # the last budget token always comes from the main model
            draft, q_rows, asst_len = draft_tokens(
                assistant, asst_cache, seq, asst_len, kk, eos_id, suppress_eos, lambda row: (int(row.argmax()), row)
            )
            pending = seq[main_len:] + draft
            rows = _forward(main, main_cache, pending, eos_id, suppress_eos)[-(len(draft) + 1) :]
            main_len += len(pending)
            target = rows.argmax(-1).tolist()
            matched = 0
            while matched < len(draft) and draft[matched] == target[matched]:
                matched += 1
            emitted = [*draft[:matched], target[matched]]
            if eos_id is not None and eos_id in emitted:
                emitted = emitted[: emitted.index(eos_id) + 1]
                stopped = True
            judged = min(matched + 1, len(draft))
            p = [float(torch.softmax(rows[i], -1)[draft[i]]) for i in range(judged)]
            q = [float(torch.softmax(q_rows[i], -1)[draft[i]]) for i in range(judged)]
            rounds.append(
                {"drafted": len(draft), "accepted": len(emitted) - 1, "emitted": len(emitted), "p": p, "q": q}
            )
            seq += emitted
            main_len = _crop(main_cache, min(main_len, len(seq) - 1))
            asst_len = _crop(asst_cache, min(asst_len, len(seq) - 1))
    new = seq[start:]
    return {
        "new_ids": new,
        "n_new": len(new),
        "n_rounds": len(rounds),
        "n_drafted": sum(r["drafted"] for r in rounds),
        "n_accepted": sum(r["accepted"] for r in rounds),
        "rounds": rounds,
        "stopped_on_eos": stopped,
    }


def teacher_forced(main, assistant, prompt_ids: Sequence[int], new_ids: Sequence[int], eos_id=None, suppress=False):
    """Schedule-free diagnostics along the generated text: one forward of each model over
    prompt + generation. ``agree[t]`` says whether the assistant's argmax equals the
    generated token t; ``main_agree`` is the self-check for the main model; the
    per-position divergences come from :func:`biasdrift.specdec.divergence.divergences`."""
    import torch

    from biasdrift.specdec.divergence import divergences

    ids = torch.tensor([list(prompt_ids) + list(new_ids)], dtype=torch.long, device=main.device)
    lo, hi = len(prompt_ids) - 1, len(prompt_ids) - 1 + len(new_ids)
    with torch.inference_mode():
        lm = _mask_eos(main(input_ids=ids).logits[0, lo:hi].float(), eos_id, suppress)  # [n_new, V]
        la = _mask_eos(assistant(input_ids=ids.to(assistant.device)).logits[0, lo:hi].float(), eos_id, suppress)
    la = la.to(lm.device)
    target = torch.tensor(list(new_ids), device=lm.device)
    top2 = lm.topk(2, dim=-1).values
    div = divergences(lm, la)
    return {
        "agree": (la.argmax(-1) == target).tolist(),
        "main_agree": (lm.argmax(-1) == target).tolist(),
        "min_top2_margin": float((top2[:, 0] - top2[:, 1]).min()),
        **{f"traj_{name}": div[name].tolist() for name in ("kl_pq", "kl_qp", "js", "tv")},
    }


# --------------------------------------------------------------------------- transformers
def generation_config(n: int, eos_id: int | None, pad_id: int | None, suppress_eos: bool):
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=n,
        eos_token_id=eos_id,
        pad_token_id=pad_id if pad_id is not None else eos_id,
        suppress_tokens=[eos_id] if suppress_eos and eos_id is not None else None,
    )


def hf_greedy(model, prompt_ids: Sequence[int], n: int, eos_id=None, pad_id=None, suppress_eos=False) -> list[int]:
    """The model's plain greedy decoding through ``generate(do_sample=False)``."""
    import torch

    ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=model.device)
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            generation_config=generation_config(n, eos_id, pad_id, suppress_eos),
        )
    return out[0, ids.shape[1] :].tolist()


def _round_counter():
    from transformers.generation.streamers import BaseStreamer

    class RoundCounter(BaseStreamer):
        """Sizes of the chunks assisted generation emits, one per round (the first
        ``put`` is the prompt and is skipped)."""

        def __init__(self) -> None:
            self.sizes: list[int] = []
            self._seen_prompt = False

        def put(self, value) -> None:
            if not self._seen_prompt:
                self._seen_prompt = True
                return
            self.sizes.append(int(value.numel()))

        def end(self) -> None:
            pass

    return RoundCounter()


def hf_assisted_rounds(
    main, assistant, prompt_ids: Sequence[int], k: int, n: int, eos_id=None, pad_id=None, suppress_eos=False
) -> tuple[list[int], list[int]]:
    """transformers' ``generate(assistant_model=...)`` with a constant schedule of K drafts
    and no confidence cut. Returns (tokens emitted per round, new token ids). The draft
    settings are read from the *assistant's* generation config, so they are set there
    for the call and restored afterwards (a heuristic schedule would persist)."""
    import torch

    gen = assistant.generation_config
    saved = {
        name: getattr(gen, name, None)
        for name in ("num_assistant_tokens", "num_assistant_tokens_schedule", "assistant_confidence_threshold")
    }
    gen.num_assistant_tokens = k
    gen.num_assistant_tokens_schedule = "constant"
    gen.assistant_confidence_threshold = 0.0
    counter = _round_counter()
    ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=main.device)
    try:
        with torch.inference_mode():
            out = main.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                generation_config=generation_config(n, eos_id, pad_id, suppress_eos),
                assistant_model=assistant,
                streamer=counter,
            )
    finally:
        for name, value in saved.items():
            setattr(gen, name, value)
    return counter.sizes, out[0, ids.shape[1] :].tolist()


# --------------------------------------------------------------------------- per prompt
def derived_metrics(record: dict[str, Any], n: int) -> dict[str, float]:
    """The per-prompt rates of specs/specdec.md §5."""
    n_new, n_acc = record["n_new"], record["n_accepted"]
    with_rejection = sum(1 for r in record["rounds"] if r["accepted"] < r["drafted"])
    agree = record.get("agree") or []
    nan = float("nan")
    return {
        "assistant_share": n_acc / n_new if n_new else nan,
        "ratio_maxnew": n_acc / n,
        "acceptance_rate": n_acc / record["n_drafted"] if record["n_drafted"] else nan,
        "acc_trunc": n_acc / (n_acc + with_rejection) if (n_acc + with_rejection) else nan,
        "tokens_per_main_call": n_new / record["n_rounds"] if record["n_rounds"] else nan,
        "agreement_rate": sum(agree) / len(agree) if agree else nan,
    }


def hf_check_rows(n_rows: int, n_checks: int) -> set[int]:
    """Evenly spread row indices for the transformers cross-check."""
    if n_checks <= 0 or n_rows == 0:
        return set()
    if n_checks >= n_rows:
        return set(range(n_rows))
    return {round(i * (n_rows - 1) / (n_checks - 1)) if n_checks > 1 else 0 for i in range(n_checks)}


def measure_prompts(main, assistant, tokenizer, templates: pd.DataFrame, cfg: DecodeConfig) -> pd.DataFrame:
    """One row per template: the own loop's counts and rates, teacher-forced agreement and
    divergences, the completion, and the checks against plain greedy and transformers."""
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    checked = hf_check_rows(len(templates), cfg.hf_check_prompts)
    rows = []
    for i, prompt in enumerate(progress(templates["prompt"].tolist(), desc="speculative decoding")):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        record = speculative_greedy(main, assistant, prompt_ids, cfg.k, cfg.n, eos_id, cfg.suppress_eos)
        diag = teacher_forced(main, assistant, prompt_ids, record["new_ids"], eos_id, cfg.suppress_eos)
        record["agree"] = diag["agree"]
        row: dict[str, Any] = {
            "n_prompt_tokens": len(prompt_ids),
            **{key: record[key] for key in ("n_new", "n_rounds", "n_drafted", "n_accepted", "stopped_on_eos")},
            **derived_metrics(record, cfg.n),
            "oracle_accepted": sum(diag["agree"][: max(record["n_new"] - 1, 0)]),
            "rounds": record["rounds"],
            "agree_vec": diag["agree"],
            "main_self_agree": all(diag["main_agree"]),
            "min_top2_margin": diag["min_top2_margin"],
            **{
                f"{name}_mean": float(sum(v) / len(v)) if v else float("nan")
                for name, v in diag.items()
                if name.startswith("traj_")
            },
            "completion_ids": record["new_ids"],
            "completion": tokenizer.decode(record["new_ids"], skip_special_tokens=True),
            "greedy_equal": None,
            "hf_emitted": None,
            "hf_equal": None,
        }
        if cfg.check_greedy:
            row["greedy_equal"] = (
                hf_greedy(main, prompt_ids, cfg.n, eos_id, pad_id, cfg.suppress_eos) == record["new_ids"]
            )
        if i in checked:
            sizes, hf_ids = hf_assisted_rounds(
                main, assistant, prompt_ids, cfg.k, cfg.n, eos_id, pad_id, cfg.suppress_eos
            )
            row["hf_emitted"] = sizes
            row["hf_equal"] = sizes == [r["emitted"] for r in record["rounds"]] and hf_ids == record["new_ids"]
        rows.append(row)
    return pd.concat([templates.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def check_consistency(frame: pd.DataFrame, cfg: DecodeConfig) -> dict[str, Any]:
    """Count disagreements with plain greedy and with transformers; raise if the
    transformers cross-check disagrees on a prompt without a near-tie."""
    near_tie = frame["min_top2_margin"] < cfg.near_tie_margin
    greedy = frame["greedy_equal"].dropna().astype(bool)
    hf = frame["hf_equal"].dropna().astype(bool)
    info = {
        "prompts": len(frame),
        "near_ties": int(near_tie.sum()),
        "greedy_checked": len(greedy),
        "greedy_mismatches": int((~greedy).sum()),
        "hf_checked": len(hf),
        "hf_mismatches": int((~hf).sum()),
        "main_self_agree_failures": int((~frame["main_self_agree"]).sum()),
    }
    bad_hf = frame.index[frame["hf_equal"].eq(False) & ~near_tie]
    if len(bad_hf):
        first = frame.loc[bad_hf[0]]
        raise SpecdecError(
            f"transformers' assisted generate disagrees with the own loop on {len(bad_hf)} prompt(s) without a "
            f"near-tie, e.g. {first['prompt']!r}: own rounds {[r['emitted'] for r in first['rounds']]} vs "
            f"transformers {first['hf_emitted']}"
        )
    if info["greedy_mismatches"] or info["main_self_agree_failures"]:
        log.warning("own loop vs plain greedy: %s (near-ties: %d)", info, info["near_ties"])
    return info
