"""Loading a condition's (main, assistant) pair from the spec that
:func:`biasdrift.specdec.workflow.pair_of` passes to a rule.

A model state is ``base`` (the configured alias), ``ft`` (fine-tuned, final weights),
``epoch<k>`` (the weights at the end of fine-tuning epoch k) or ``base_bf16`` (the base
weights cast to bfloat16 and back, the control for the original's bf16 rounding).
Models are always loaded in float32.
"""

from __future__ import annotations

import logging
from typing import Any

from biasdrift.models import load_model, load_tokenizer
from biasdrift.specdec.pairing import check_pair

log = logging.getLogger(__name__)


def load_state(spec: dict[str, Any], device: Any):
    """One model of a pair, in float32 and eval mode, with its tokenizer."""
    import torch

    model = load_model(spec["ref"], "causal_lm", device=device, dtype=torch.float32)
    if spec["state"] == "base_bf16":
        model.to(torch.bfloat16).to(torch.float32)
    model.eval()
    return model, load_tokenizer(spec["ref"])


def load_pair(pair: dict[str, Any], device: Any):
    """(main, assistant, tokenizer) of a condition; raises SpecdecError when the two
    models do not share a tokenizer and output vocabulary."""
    main, main_tok = load_state(pair["main"], device)
    assistant, asst_tok = load_state(pair["assistant"], device)
    names = (
        f"{pair['main']['alias']} ({pair['main']['state']})",
        f"{pair['assistant']['alias']} ({pair['assistant']['state']})",
    )
    check_pair(main, assistant, main_tok, asst_tok, names)
    log.info("condition %s: main %s, assistant %s", pair.get("condition"), *names)
    return main, assistant, main_tok
