"""Your own task for the circuits study: clean / corrupted prompt pairs from a TSV file and
a logit-difference metric, through the same EAP (or EAP-IG), circuit and faithfulness code
as the bias templates (rule discover_task_circuit, ``studies.circuits.tasks``).

The TSV (tab-separated, a header row, UTF-8) has the columns

* ``clean``: the prompt whose behaviour the circuit should explain;
* ``corrupted``: the same prompt with the information removed or swapped;
* ``answer``: the continuation the clean prompt should favour, as the tokenizer sees it
  right after the prompt (usually with its leading space, e.g. `` Mary``);
* ``distractor``: the continuation it should disfavour (e.g. `` John``).

Each of ``answer`` and ``distractor`` must be exactly one token. The metric of one example
is ``logit(answer) − logit(distractor)`` at the last position (the logit difference of
Wang et al. 2022's IOI study); its dataset value is the mean over examples. Further columns
are kept and ignored.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from biasdrift.circuits.jobs import EAPConfig

log = logging.getLogger(__name__)

COLUMNS = ("clean", "corrupted", "answer", "distractor")
METRICS = ("logit_diff",)


class TaskError(ValueError):
    """A task file that cannot be used; names the file, the row and the column."""


def read_task(path: str | Path, where: str) -> pd.DataFrame:
    """The task's rows, strings exactly as written (no NA parsing, no stripping)."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"{where}: task file {path} does not exist")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise TaskError(f"{where}: {path} lacks column(s) {missing}; present: {list(frame.columns)} (tab-separated)")
    if frame.empty:
        raise TaskError(f"{where}: {path} has no rows")
    for column in COLUMNS:
        empty = frame.index[frame[column] == ""]
        if len(empty):
            raise TaskError(f"{where}: {path} row {int(empty[0]) + 2}: empty {column!r}")
    return frame.reset_index(drop=True)


def single_tokens(tokenizer, words: list[str], column: str, where: str) -> list[int]:
    """The one token id of every ``words`` entry (encoded without special tokens)."""
    out = []
    for row, word in enumerate(words):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            pieces = tokenizer.convert_ids_to_tokens(ids)
            raise TaskError(
                f"{where}: row {row + 2} {column} {word!r} is {len(ids)} tokens {pieces}; the logit difference "
                "needs one token each (mind the leading space)"
            )
        out.append(int(ids[0]))
    return out


class LogitDiff:
    """``logit(answer) − logit(distractor)`` at the last position, per example (the
    batch's example indices pick each row's answer and distractor)."""

    def __init__(self, answer_ids: list[int], distractor_ids: list[int]):
        import torch

        self.answer = torch.tensor(answer_ids, dtype=torch.long)
        self.distractor = torch.tensor(distractor_ids, dtype=torch.long)

    def __call__(self, logits, batch):
        import torch

        index = batch.index.to(self.answer.device)
        rows = torch.arange(logits.shape[0], device=logits.device)
        a, d = self.answer[index].to(logits.device), self.distractor[index].to(logits.device)
        return logits[rows, a] - logits[rows, d]


def task_circuit(
    *,
    model_ref: dict,
    task_tsv: str | Path,
    task: str,
    cfg: EAPConfig,
    sizes: list[int],
    device: Any,
    outputs: dict[str, str],
) -> dict[str, Any]:
    """Rule discover_task_circuit (jobs.discover_task_circuit): EAP (or EAP-IG) scores of every edge for the task's
    prompt pairs and logit difference, the top edges, the greedy circuit of ``n_edges``
    and the faithfulness of the greedy circuit of every size in ``sizes``."""
    from biasdrift.circuits import circuit, eap
    from biasdrift.circuits.graph import Graph
    from biasdrift.circuits.jobs import load_session, pair_batches
    from biasdrift.runtime import atomic_path, write_json, write_text

    where = f"discover_task_circuit {model_ref.get('alias')} task {task}"
    rows, tokenizer, batches, align = pair_batches(model_ref, read_task(task_tsv, where), cfg, where)
    answers = single_tokens(tokenizer, rows["answer"].tolist(), "answer", f"{where} {task_tsv}")
    distractors = single_tokens(tokenizer, rows["distractor"].tolist(), "distractor", f"{where} {task_tsv}")
    session = load_session(model_ref, tokenizer, device, cfg.dtype)
    metric = LogitDiff(answers, distractors)
    scores = eap.attribute(session.model, session.adapter, batches, metric, method=cfg.method, ig_steps=cfg.ig_steps)
    graph = Graph(session.adapter.n_layers, session.adapter.n_heads)
    table = circuit.edge_table(graph, scores)
    meta = {
        "model": model_ref.get("alias"),
        "model_ref": model_ref,
        "task": task,
        "task_file": str(task_tsv),
        "metric": "logit_diff",
        "n_layers": graph.n_layers,
        "n_heads": graph.n_heads,
        "n_kv_heads": session.adapter.n_kv_heads,
        "examples": align["used"],
        "method": cfg.method,
        "ig_steps": cfg.ig_steps if cfg.method == "eap-ig" else None,
        "sign": "score ~ M(clean) - M(edge patched to corrupted)",
    }
    circuit.write_scores(table, outputs["scores"], meta)
    top = circuit.top_edges(table, cfg.n_edges, cfg.ranking)
    write_text(outputs["top_edges"], circuit.top_edges_text(top, f"Top {cfg.n_edges} edges, task {task}"))
    chosen, _ = circuit.greedy_circuit(table, cfg.n_edges, cfg.ranking)
    pruned = circuit.prune_dead_nodes(table, chosen)
    kept = circuit.size_curve_masks(table, sizes, cfg.ranking)
    circuits = [None, np.zeros(len(table), dtype=bool), pruned, *(mask for _, _, mask in kept)]
    values = eap.evaluate_graphs(session.model, session.adapter, batches, metric, circuits, graph).mean(axis=1)
    full, corrupted = float(values[0]), float(values[1])
    baseline = float(eap.evaluate_plain(session.model, session.adapter, batches, metric).mean())
    curve = circuit.size_curve_frame(table, kept, values[3:], full, corrupted)
    with atomic_path(outputs["faithfulness"]) as tmp:
        curve.to_csv(tmp, index=False)
    result = {
        "baseline": baseline,
        "full_graph": full,
        "circuit": float(values[2]),
        "corrupted": corrupted,
        "faithfulness": circuit.faithfulness(float(values[2]), full, corrupted),
        "circuit_edges": int(pruned.sum()),
        "nodes": sorted(circuit.circuit_nodes(table, pruned)),
    }
    write_json(outputs["results_json"], {**result, "align": align, "meta": meta})
    log.info("%s: %s", where, {k: v for k, v in result.items() if k != "nodes"})
    return {k: v for k, v in result.items() if k != "nodes"}
