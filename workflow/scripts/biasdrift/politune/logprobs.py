"""Summed log-probabilities of completions given prompts, computed with plain forward
passes (no trl): the statement probe's option scores and the implicit-reward margins of
held-out pairs both come from here.

Only the positions that predict a scored token go through the output layer
(``logits_to_keep``): with a 128K-152K vocabulary (Llama 3, Qwen 2.5) the full logits of
a batch are gigabytes, and the probe scores one or two tokens after a prompt of dozens.
"""

from __future__ import annotations

from collections.abc import Sequence

from biasdrift.runtime import progress
from biasdrift.training import LOGPROB_CHUNK, token_logprobs


def _logits_at(model, ids, mask, positions):
    """Logits ``[batch, len(positions), vocab]`` (the model's dtype) at sequence
    ``positions`` (a 1-D tensor shared by the batch), through ``logits_to_keep`` where the
    model has it."""
    try:
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=positions).logits
    except TypeError as err:  # a model class without logits_to_keep: full logits, then select
        if "logits_to_keep" not in str(err):
            raise
        logits = model(input_ids=ids, attention_mask=mask).logits[:, positions]
    if logits.shape[1] != len(positions):  # an implementation that ignored the argument
        logits = logits[:, positions]
    return logits


def _right_padded(seqs: list[list[int]], pad_id: int):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    return ids, mask


def completion_logps(
    model,
    pairs: Sequence[tuple[list[int], list[int]]],
    pad_id: int,
    device,
    batch_size: int = 16,
    desc: str = "log-probs",
    chunk_size: int = LOGPROB_CHUNK,
) -> list[float]:
    """``sum_t log p(completion_t | prompt, completion_<t)`` for each ``(prompt_ids,
    completion_ids)``; sequences are right-padded, so positions never shift."""
    import torch

    out: list[float] = []
    batches = range(0, len(pairs), batch_size)
    for start in progress(batches, desc=desc, total=len(batches)):
        chunk = pairs[start : start + batch_size]
        for prompt, completion in chunk:
            if not prompt or not completion:
                raise ValueError("every pair needs at least one prompt and one completion token")
        ids, mask = _right_padded([list(p) + list(c) for p, c in chunk], pad_id)
        # position t predicts token t + 1: keep the positions that predict a completion token
        scored = torch.zeros_like(ids, dtype=torch.bool)
        for i, (prompt, completion) in enumerate(chunk):
            scored[i, len(prompt) - 1 : len(prompt) + len(completion) - 1] = True
        positions = scored.any(dim=0).nonzero().squeeze(-1)
        with torch.no_grad():
            logits = _logits_at(model, ids.to(device), mask.to(device), positions.to(device))
        targets = ids[:, positions + 1].to(logits.device)
        # chunked: no [batch, positions, vocab] float32 log-softmax (training.token_logprobs)
        token_logp = token_logprobs(logits, targets, chunk_size)
        out += (token_logp * scored[:, positions].to(logits.device)).sum(-1).tolist()
    return out


def branching_logps(
    model,
    stems: Sequence[tuple[list[int], list[int]]],
    candidates: Sequence[int],
    pad_id: int,
    device,
    batch_size: int = 16,
    desc: str = "option log-probs",
    chunk_size: int = LOGPROB_CHUNK,
) -> list[list[float]]:
    """For each ``(prompt_ids, shared_ids)`` and every token ``c`` of ``candidates``:
    ``log p(shared + [c] | prompt)``, i.e. completions that share their first tokens and
    differ in the last one, all scored in one forward pass of ``prompt + shared`` (equal
    to :func:`completion_logps` of each completion)."""
    import torch

    out: list[list[float]] = []
    batches = range(0, len(stems), batch_size)
    for start in progress(batches, desc=desc, total=len(batches)):
        chunk = stems[start : start + batch_size]
        if not all(prompt for prompt, _ in chunk):
            raise ValueError("every prompt needs at least one token")
        ids, mask = _right_padded([list(p) + list(s) for p, s in chunk], pad_id)
        scored = torch.zeros_like(ids, dtype=torch.bool)  # positions that predict a shared token
        last = torch.zeros_like(ids, dtype=torch.bool)  # the position that predicts the candidate
        for i, (prompt, shared) in enumerate(chunk):
            scored[i, len(prompt) - 1 : len(prompt) + len(shared) - 1] = True
            last[i, len(prompt) + len(shared) - 1] = True
        positions = (scored | last).any(dim=0).nonzero().squeeze(-1)
        with torch.no_grad():
            logits = _logits_at(model, ids.to(device), mask.to(device), positions.to(device))
        targets = torch.cat([ids[:, 1:], ids[:, -1:]], dim=1)[:, positions].to(logits.device)
        scored_here = scored[:, positions].to(logits.device)
        shared_logp = (token_logprobs(logits, targets, chunk_size) * scored_here).sum(-1)
        final = last[:, positions].float().argmax(dim=1).to(logits.device)
        # one [batch, vocab] row per sequence: the position that predicts the candidate
        last_logits = logits[torch.arange(len(chunk), device=logits.device), final].float()
        at_last = torch.log_softmax(last_logits, dim=-1)[:, list(candidates)]
        out += (at_last + shared_logp[:, None]).tolist()
    return out
