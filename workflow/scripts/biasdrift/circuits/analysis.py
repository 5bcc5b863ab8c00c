"""Comparisons and stability of circuits (top-n edge sets), and the bias summaries with
bootstrap intervals. Torch-free.

* Overlap % = |A ∩ B| / |A ∪ B| × 100 (Jaccard); both empty → 100, one empty → 0.
* Grammatical stability pairs DSS1↔DSS2 and GSS1↔GSS2 per (corruption, metric); bias-type
  stability pairs DSS1↔GSS1 and DSS2↔GSS2 for every (demographic, gender) metric pair
  (the original grouped these so that no pair ever formed and never wrote the file).
* Layer distribution attributes every edge to its *child's* layer (logits = n_layers),
  with the true layer count from the score file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.circuits.prompts import TEMPLATES, display


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    a, b = set(a), set(b)
    if not a and not b:
        return 100.0
    if not a or not b:
        return 0.0
    return 100.0 * len(a & b) / len(a | b)


# --------------------------------------------------------------------------- comparison
def comparison(base: list[str], tuned: list[str]) -> dict[str, Any]:
    a, b = set(base), set(tuned)
    return {
        "overlap_percent": jaccard(a, b),
        "intersection": len(a & b),
        "union": len(a | b),
        "pretrained_edges": len(a),
        "finetuned_edges": len(b),
        "only_pretrained": sorted(a - b),
        "only_finetuned": sorted(b - a),
        "common": sorted(a & b),
    }


def comparison_text(stats: dict[str, Any], fields: dict[str, str]) -> str:
    """The original ``_finetuned_comparison.txt`` layout."""
    lines = ["Circuit Comparison: Pretrained vs Fine-tuned Model", "=" * 80]
    lines += [f"{k}: {v}" for k, v in fields.items()]
    lines += [
        "",
        f"Pretrained Model Edges: {stats['pretrained_edges']}",
        f"Fine-tuned Model Edges: {stats['finetuned_edges']}",
        f"Overlap: {stats['overlap_percent']:.2f}%",
        f"Intersection: {stats['intersection']} edges",
        f"Union: {stats['union']} edges",
    ]
    for title, key in (
        ("Edges only in Pretrained Model:", "only_pretrained"),
        ("Edges only in Fine-tuned Model:", "only_finetuned"),
        ("Common Edges:", "common"),
    ):
        lines += ["", title, "-" * 80]
        lines += [f"  {edge}" for edge in stats[key]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- stability
@dataclass(frozen=True)
class RunKey:
    bias: str
    template: str
    corruption: str
    metric: str

    @property
    def label(self) -> str:
        return f"{self.bias}_{display(self.template)}_{display(self.corruption)}_{display(self.metric)}"


def overlap_matrix(sets: dict[RunKey, set[str]]) -> pd.DataFrame:
    """Jaccard % between every pair of runs; symmetric, diagonal 100."""
    keys = sorted(sets, key=lambda k: k.label)
    labels = [k.label for k in keys]
    values = np.array([[jaccard(sets[a], sets[b]) for b in keys] for a in keys], dtype=float).reshape(
        len(keys), len(keys)
    )
    return pd.DataFrame(values, index=labels, columns=labels)


def grammatical_pairs(keys: Iterable[RunKey]) -> list[tuple[RunKey, RunKey]]:
    keys = set(keys)
    out = []
    for first, second in (("dss1", "dss2"), ("gss1", "gss2")):
        for a in sorted((k for k in keys if k.template == first), key=lambda k: k.label):
            b = RunKey(a.bias, second, a.corruption, a.metric)
            if b in keys:
                out.append((a, b))
    return out


def bias_type_pairs(keys: Iterable[RunKey]) -> list[tuple[RunKey, RunKey]]:
    keys = set(keys)
    out = []
    for dss, gss in (("dss1", "gss1"), ("dss2", "gss2")):
        demo = sorted((k for k in keys if k.template == dss), key=lambda k: k.label)
        gender = sorted((k for k in keys if k.template == gss), key=lambda k: k.label)
        out += [(a, b) for a in demo for b in gender if a.corruption == b.corruption]
    return out


def pair_lines(pairs: list[tuple[RunKey, RunKey]], sets: dict[RunKey, set[str]], kind: str) -> list[str]:
    """``{bias}_{metric}_DSS1_vs_DSS2: xx.xx%`` (grammatical) or
    ``{corruption}_DSS1_{metric}_vs_GSS1_{metric}: xx.xx%`` (bias type)."""
    lines = []
    for a, b in pairs:
        if kind == "grammatical":
            name = (
                f"{a.bias}_{display(a.metric)}_{display(a.corruption)}_{display(a.template)}_vs_{display(b.template)}"
            )
        else:
            first = f"{display(a.corruption)}_{display(a.template)}_{display(a.metric)}"
            name = f"{first}_vs_{display(b.template)}_{display(b.metric)}"
        lines.append(f"{name}: {jaccard(sets[a], sets[b]):.2f}%")
    return lines


def layer_distribution(top: pd.DataFrame, n_layers: int) -> pd.DataFrame:
    """Count and percentage of edges per child layer 0..n_layers (n_layers = logits)."""
    layers = np.arange(n_layers + 1)
    counts = top["child_layer"].value_counts().reindex(layers, fill_value=0).to_numpy()
    if counts.sum() != len(top):
        raise ValueError("edges outside layers 0..n_layers: the score file and n_layers disagree")
    total = max(int(counts.sum()), 1)
    return pd.DataFrame(
        {
            "layer": layers,
            "label": [str(layer) if layer < n_layers else "logits" for layer in layers],
            "edges": counts,
            "percent": 100.0 * counts / total,
        }
    )


# --------------------------------------------------------------------------- bias summaries
def bootstrap_mean(values: np.ndarray, samples: int, seed: int, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and percentile bootstrap interval (NaNs when empty)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(samples, values.size), replace=True).mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(values.mean()), float(lo), float(hi)


def template_bias(template: str) -> str:
    return TEMPLATES[template].bias
