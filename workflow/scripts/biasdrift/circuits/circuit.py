"""What is derived from the saved dense edge scores: the ranked top-n list
(``top_edges.txt`` in the original format), the greedy circuit with dead-node pruning,
the ablation levels, and the original's text reports. Torch-free.

One ranking rule everywhere (``ranking``): ``absolute`` (|score| descending, the
published files) or ``signed`` (score descending); ties go to the edge name, ascending.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.circuits.graph import INPUT, LOGITS, Graph
from biasdrift.runtime import atomic_path

RANKINGS = ("absolute", "signed")
SCORE_COLUMNS = ("edge", "parent", "child", "qkv", "parent_layer", "child_layer", "score")
RULE = "=" * 80


# --------------------------------------------------------------------------- scores on disk
def edge_table(graph: Graph, scores: np.ndarray) -> pd.DataFrame:
    """The full dense table: one row per edge (Graph.edges order) with its score."""
    edges = graph.edges()
    if len(scores) != len(edges):
        raise ValueError(f"{len(scores)} scores for {len(edges)} edges")
    table = edges[["edge", "parent", "child", "qkv", "parent_layer", "child_layer"]].copy()
    table["score"] = np.asarray(scores, dtype=np.float64)
    return table


def write_scores(table: pd.DataFrame, path: str | Path, meta: dict[str, Any]) -> None:
    """Parquet with the graph shape and run details in the file's key-value metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"biasdrift": json.dumps(meta).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)


def read_scores(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    import pyarrow.parquet as pq

    arrow = pq.read_table(path)
    meta = json.loads((arrow.schema.metadata or {}).get(b"biasdrift", b"{}"))
    table = arrow.to_pandas()
    missing = [c for c in SCORE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    return table, meta


def graph_of(meta: dict[str, Any], where: str = "scores") -> Graph:
    try:
        return Graph(int(meta["n_layers"]), int(meta["n_heads"]))
    except KeyError as err:
        raise ValueError(f"{where}: no graph shape in the file's metadata") from err


# --------------------------------------------------------------------------- ranking
def rank_key(scores: np.ndarray, ranking: str) -> np.ndarray:
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, got {ranking!r}")
    return np.abs(scores) if ranking == "absolute" else np.asarray(scores, dtype=np.float64)


def ranked(table: pd.DataFrame, ranking: str = "absolute") -> pd.DataFrame:
    """All edges, best first (ties: edge name ascending)."""
    order = np.lexsort((table["edge"].to_numpy(), -rank_key(table["score"].to_numpy(), ranking)))
    return table.iloc[order].reset_index(drop=True)


def top_edges(table: pd.DataFrame, n: int, ranking: str = "absolute") -> pd.DataFrame:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return ranked(table, ranking).head(n)


def top_edges_text(top: pd.DataFrame, title: str) -> str:
    """The original ``_top_edges.txt``: a title line, 80 '=', then ``{rank}. {edge}: score={signed:.6f}``."""
    lines = [title, RULE]
    lines += [
        f"{rank}. {edge}: score={score:.6f}"
        for rank, (edge, score) in enumerate(zip(top.edge, top.score, strict=True), 1)
    ]
    return "\n".join(lines) + "\n"


def parse_top_edges(text: str) -> list[str]:
    """Edge names of a top-edges file (skip 2 lines; the text between the first '. ' and ': score=')."""
    out = []
    for line in text.splitlines()[2:]:
        if not line.strip():
            continue
        out.append(line.split(". ", 1)[1].rsplit(": score=", 1)[0])
    return out


# --------------------------------------------------------------------------- greedy circuit
def greedy_circuit(table: pd.DataFrame, n: int, ranking: str = "absolute") -> tuple[np.ndarray, int]:
    """Grow a circuit from ``logits``: repeatedly add the best edge whose child is in the
    circuit (adding its parent node and the parent's incoming edges as candidates).
    Returns the edge mask and how many edges were selected (< n when the candidates ran out)."""
    key = rank_key(table["score"].to_numpy(), ranking)
    names = table["edge"].to_numpy()
    incoming: dict[str, list[int]] = defaultdict(list)
    for i, child in enumerate(table["child"].to_numpy()):
        incoming[child].append(i)
    parents = table["parent"].to_numpy()
    chosen = np.zeros(len(table), dtype=bool)
    nodes = {LOGITS}
    heap = [(-key[i], names[i], i) for i in incoming[LOGITS]]
    heapq.heapify(heap)
    selected = 0
    while heap and selected < n:
        _, _, i = heapq.heappop(heap)
        chosen[i] = True
        selected += 1
        parent = parents[i]
        if parent not in nodes:
            nodes.add(parent)
            for j in incoming.get(parent, []):
                heapq.heappush(heap, (-key[j], names[j], j))
    return chosen, selected


def prune_dead_nodes(table: pd.DataFrame, in_circuit: np.ndarray) -> np.ndarray:
    """Drop edges that cannot matter: from nodes with no way to logits (no outgoing
    circuit edge), and out of nodes other than ``input`` that receive no circuit edge
    (their output is then the corrupted one anyway). Repeated until nothing changes."""
    keep = np.asarray(in_circuit, dtype=bool).copy()
    parents, children = table["parent"].to_numpy(), table["child"].to_numpy()
    while True:
        active = np.flatnonzero(keep)
        has_out = set(parents[active])
        has_in = set(children[active])
        dead = np.array([children[i] != LOGITS and children[i] not in has_out for i in active], dtype=bool)
        dead |= np.array([parents[i] != INPUT and parents[i] not in has_in for i in active], dtype=bool)
        if not dead.any():
            return keep
        keep[active[dead]] = False


def circuit_nodes(table: pd.DataFrame, in_circuit: np.ndarray) -> set[str]:
    rows = table[np.asarray(in_circuit, dtype=bool)]
    return set(rows["parent"]) | set(rows["child"])


def reaches_logits(table: pd.DataFrame, in_circuit: np.ndarray) -> bool:
    """Every node of the circuit has a path of circuit edges to ``logits``."""
    rows = table[np.asarray(in_circuit, dtype=bool)]
    children_of: dict[str, set[str]] = defaultdict(set)
    for parent, child in zip(rows["parent"], rows["child"], strict=True):
        children_of[parent].add(child)
    good = {LOGITS}
    changed = True
    while changed:
        changed = False
        for node, kids in children_of.items():
            if node not in good and kids & good:
                good.add(node)
                changed = True
    return circuit_nodes(table, in_circuit) <= good


def ablation_masks(table: pd.DataFrame, levels: list[int], ranking: str = "absolute") -> list[tuple[int, np.ndarray]]:
    """Circuits with the top-n edges removed (all others kept), for each level n
    (capped at the number of edges; duplicates after capping dropped)."""
    order = ranked(table.assign(_row=np.arange(len(table))), ranking)["_row"].to_numpy()
    out, seen = [], set()
    for level in sorted(levels):
        n = min(int(level), len(table))
        if n in seen:
            continue
        seen.add(n)
        mask = np.ones(len(table), dtype=bool)
        mask[order[:n]] = False
        out.append((n, mask))
    return out


def size_curve_masks(
    table: pd.DataFrame, sizes: list[int], ranking: str = "absolute"
) -> list[tuple[int, int, np.ndarray]]:
    """The greedy circuit of n edges (pruned of dead nodes) for each size n >= 1 (capped
    at the number of edges, duplicates after capping dropped): (n, edges selected, mask)."""
    out, seen = [], set()
    for size in sorted(sizes):
        n = min(int(size), len(table))
        if n < 1 or n in seen:
            continue
        seen.add(n)
        mask, selected = greedy_circuit(table, n, ranking)
        out.append((n, selected, prune_dead_nodes(table, mask)))
    return out


def size_curve_frame(
    table: pd.DataFrame, kept: list[tuple[int, int, np.ndarray]], scores: Any, full: float, corrupted: float
) -> pd.DataFrame:
    """faithfulness.csv: per size of :func:`size_curve_masks` the circuit's edges and nodes
    after pruning, its metric ``scores[i]`` and its faithfulness."""
    return pd.DataFrame(
        {
            "edges": [n for n, _, _ in kept],
            "circuit_edges": [int(mask.sum()) for _, _, mask in kept],
            "nodes": [len(circuit_nodes(table, mask)) for _, _, mask in kept],
            "score": list(scores),
            "full_graph": full,
            "corrupted": corrupted,
            "faithfulness": [faithfulness(float(v), full, corrupted) for v in scores],
        }
    )


# --------------------------------------------------------------------------- reports
def results_text(fields: dict[str, Any], scores: dict[str, float], n_edges: int, n_nodes: int) -> str:
    """The original ``_results.txt`` layout (plus the corrupted score and faithfulness)."""
    lines = ["Bias Circuit Analysis Results", "=" * 50]
    lines += [f"{k}: {v}" for k, v in fields.items()]
    lines += [
        "",
        "Results:",
        f"Baseline Score: {scores['baseline']:.6f}",
        f"Graph Baseline Score: {scores['full_graph']:.6f}",
        f"Circuit Score: {scores['circuit']:.6f}",
        f"Score Difference: {scores['baseline'] - scores['circuit']:.6f}",
        f"Corrupted Score: {scores['corrupted']:.6f}",
        f"Faithfulness: {scores['faithfulness']:.6f}",
        "",
        "Circuit Statistics:",
        f"Number of edges in circuit: {n_edges}",
        f"Number of nodes in circuit: {n_nodes}",
    ]
    return "\n".join(lines) + "\n"


def faithfulness(circuit: float, full: float, corrupted: float) -> float:
    """(circuit − corrupted) / (full − corrupted); NaN when full == corrupted."""
    span = full - corrupted
    return float("nan") if abs(span) < 1e-12 else (circuit - corrupted) / span
