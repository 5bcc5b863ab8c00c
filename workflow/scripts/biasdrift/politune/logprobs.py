"""Summed log-probabilities of completions given prompts, computed with plain forward
passes (no trl): the statement probe's option scores and the implicit-reward margins of
held-out pairs both come from :func:`completion_logps`."""

from __future__ import annotations

from collections.abc import Sequence

from biasdrift.runtime import progress
from biasdrift.training import LOGPROB_CHUNK, token_logprobs


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
        seqs = [list(p) + list(c) for p, c in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        target = torch.zeros((len(seqs), width), dtype=torch.bool)  # positions whose token is scored
        for i, ((prompt, completion), seq) in enumerate(zip(chunk, seqs, strict=True)):
            if not prompt or not completion:
                raise ValueError("every pair needs at least one prompt and one completion token")
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
            target[i, len(prompt) : len(seq)] = True
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            # position t predicts token t+1; chunked: no [batch, width, vocab] float32 log-softmax
            token_logp = token_logprobs(logits[:, :-1], ids[:, 1:].to(logits.device), chunk_size)  # [batch, width-1]
        scored = target[:, 1:].to(logits.device)
        out += (token_logp * scored).sum(-1).tolist()
    return out
