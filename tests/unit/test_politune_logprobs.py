"""The probe's and the preference margins' log-probabilities: chunked over positions
(bounded memory for a 128k vocabulary), equal to the full log-softmax."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from biasdrift import training
from biasdrift.politune.logprobs import completion_logps


def test_completion_logps_are_chunked_and_equal_the_full_log_softmax(monkeypatch):
    torch.manual_seed(0)
    vocab = 97
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=32, vocab_size=vocab)).eval()
    gen = torch.Generator().manual_seed(1)
    pairs = [
        (torch.randint(1, vocab, (n,), generator=gen).tolist(), torch.randint(1, vocab, (m,), generator=gen).tolist())
        for n, m in ((3, 2), (5, 4), (2, 1), (6, 3))
    ]
    rows = []
    inner = training._chunk_logprobs
    monkeypatch.setattr(training, "_chunk_logprobs", lambda x, t, d: rows.append(x.shape[0]) or inner(x, t, d))
    got = completion_logps(model, pairs, pad_id=0, device="cpu", batch_size=3, chunk_size=2)
    assert rows and max(rows) == 2  # never more than chunk_size positions of full-vocabulary scores
    expected = []
    with torch.no_grad():
        for prompt, completion in pairs:
            ids = torch.tensor([prompt + completion])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            picked = logp.gather(-1, ids[0, 1:, None]).squeeze(-1)
            expected.append(float(picked[len(prompt) - 1 :].sum()))
    torch.testing.assert_close(torch.tensor(got), torch.tensor(expected), rtol=0, atol=1e-5)
