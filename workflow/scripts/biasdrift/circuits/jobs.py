"""One function per rule of study "circuits": explicit paths in, files out, a dict of
results back (for the manifest). Inputs are checked (columns, empty splits, unsupported
attention layouts, prompts longer than the context) before any model weights load."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.circuits import analysis, circuit
from biasdrift.circuits.graph import Graph
from biasdrift.circuits.prompts import (
    BIAS_TEMPLATES,
    TEMPLATES,
    build_prompts,
    check_pairing,
    display,
    load_groups,
    read_prompts,
    write_prompts,
)
from biasdrift.runtime import atomic_path, write_json, write_text

log = logging.getLogger(__name__)

SPLIT_RULE = {
    "demographic": ("positive_mass", "negative_mass", "pos", "neg"),
    "gender": ("male_mass", "female_mass", "mb", "fb"),
}


class EmptySplitError(ValueError):
    """A group split selected no prompt: EAP has nothing to run on."""


@dataclass
class EAPConfig:
    """``studies.circuits.eap`` (schema: config/schema/circuits.yaml)."""

    batch_size: int = field(default=16, metadata={"help": "Prompt pairs per batch."})
    align: str = field(default="left", metadata={"help": "left (padding + masks) or same_length."})
    dtype: str = field(default="auto", metadata={"help": "auto, fp32, bf16 or fp64."})
    split: str = field(default="pos", metadata={"help": "Base-model split EAP runs on (pos/neg/mb/fb/all)."})
    max_prompts: int | None = field(default=None, metadata={"help": "Cap on prompts (None = all)."})
    n_edges: int = field(default=100, metadata={"help": "Edges of the greedy circuit and top_edges.txt."})
    ranking: str = field(default="absolute", metadata={"help": "absolute or signed."})
    method: str = field(default="eap", metadata={"help": "eap or eap-ig."})
    ig_steps: int = field(default=5, metadata={"help": "Interpolation steps of eap-ig."})


def from_params(cls: type, values: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


# --------------------------------------------------------------------------- prompts
def make_prompts(group_source: dict, underscores: str, bias: str, template: str, corruption: str, out_csv) -> dict:
    check_pairing(bias, template, "make_prompts")
    groups, report = load_groups(group_source, underscores, f"{bias} groups")
    frame = build_prompts(groups, bias, template, corruption)
    write_prompts(frame, out_csv)
    return {**report, "prompts": len(frame), "self_pairs": frame.loc[frame.self_pair, "group"].tolist()}


# --------------------------------------------------------------------------- models
@dataclass
class Session:
    """A model ready for analysis: tokenizer, weights, adapter, device."""

    model: Any
    tokenizer: Any
    adapter: Any
    device: Any
    name: str


def open_tokenizer(model_ref: dict, where: str):
    """Tokenizer and context length, after checking the attention layout (no weights)."""
    from transformers import AutoConfig

    from biasdrift.circuits.adapters import check_supported
    from biasdrift.models import load_tokenizer, pretrained_source

    name, kwargs = pretrained_source(model_ref)
    config = AutoConfig.from_pretrained(name, **kwargs)
    check_supported(config, where)
    n_ctx = int(getattr(config, "n_positions", None) or config.max_position_embeddings)
    return load_tokenizer(model_ref), n_ctx


def load_session(model_ref: dict, tokenizer, device: Any, dtype_name: str) -> Session:
    from biasdrift.circuits.adapters import adapter_for
    from biasdrift.models import load_model
    from biasdrift.runtime import choose_dtype

    dtype = choose_dtype(device, dtype_name)
    model = load_model(model_ref, kind="causal_lm", device=device, dtype=dtype).eval()
    model.requires_grad_(False)
    adapter = adapter_for(model, f"model {model_ref.get('alias')!r}")
    log.info(
        "model %s: %d layers, %d heads (%d key/value), %s on %s",
        model_ref.get("alias"),
        adapter.n_layers,
        adapter.n_heads,
        adapter.n_kv_heads,
        dtype,
        device,
    )
    return Session(model, tokenizer, adapter, device, str(model_ref.get("alias")))


def make_labeler(tokenizer, prompts: list[str], label_params: dict, device: Any):
    from biasdrift.circuits.labels import GenderLexicon, SentimentConfig, make_sentiment
    from biasdrift.circuits.metrics import TokenLabeler

    sentiment = make_sentiment(
        from_params(SentimentConfig, label_params["sentiment"]), label_params.get("sentiment_model"), device
    )
    return TokenLabeler(tokenizer, prompts, sentiment, GenderLexicon.from_csv(label_params["gender_terms"]))


# --------------------------------------------------------------------------- eval_bias
def eval_bias(
    *,
    model_ref: dict,
    prompt_files: list[str],
    label_params: dict,
    batch_size: int,
    device: Any,
    dtype_name: str,
    out_table: str | Path,
    out_summary: str | Path,
) -> dict:
    """Top-k next tokens of every clean prompt with their labels and all four metrics."""
    import torch

    from biasdrift.circuits import eap
    from biasdrift.circuits.metrics import describe_topk

    where = f"eval_bias {model_ref.get('alias')}"
    tokenizer, n_ctx = open_tokenizer(model_ref, where)
    frames = []
    for path in prompt_files:
        stem = Path(path).stem  # {bias}_{template}_{corruption}
        bias, template, corruption = stem.split("_")
        frame = read_prompts(path).assign(bias=bias, template=template, corruption=corruption)
        eap.encode_pairs(tokenizer, frame.clean.tolist(), frame.corrupted.tolist(), n_ctx, str(path))
        frames.append(frame)
    prompts = pd.concat(frames, ignore_index=True)
    if prompts.empty:
        raise ValueError(f"{where}: no prompts")
    session = load_session(model_ref, tokenizer, device, dtype_name)
    labeler = make_labeler(tokenizer, prompts.clean.tolist(), label_params, device)
    ids = [eap.encode_prompt(tokenizer, text) for text in prompts.clean]
    batches = eap.make_batches(ids, ids, batch_size, _pad_id(tokenizer))
    tracer = eap.Tracer(session.model, session.adapter)
    rows = []
    with torch.no_grad():
        for batch in batches:
            logits = tracer.run(batch.clean_ids, batch.clean_mask)
            probs = torch.softmax(logits.float(), dim=-1)
            rows += describe_topk(probs, batch.index.numpy(), labeler, label_params["top_k"])
    details = pd.DataFrame(rows).sort_values("example").drop(columns="example").reset_index(drop=True)
    table = pd.concat([prompts, details], axis=1)  # describe_topk's "example" is the row of `prompts`
    with atomic_path(out_table) as tmp:
        table.to_parquet(tmp, index=False)
    summary = {
        f"{t}_{c}": {m: float(g[m].mean()) for m in ("m1", "m2", "g1", "g2")}
        for (t, c), g in table.groupby(["template", "corruption"])
    }
    summary["sentiment_calls"] = labeler.sentiment.calls
    write_json(out_summary, summary)
    return summary


def _pad_id(tokenizer) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if value is not None:
            return int(value)
    return 0


# --------------------------------------------------------------------------- splits
def split_labels(table: pd.DataFrame, bias: str) -> pd.Series:
    """pos iff P_pos > P_neg (strict; ties go to neg); mb iff P_male > P_female (ties fb)."""
    first, second, yes, no = SPLIT_RULE[bias]
    return pd.Series(np.where(table[first] > table[second], yes, no), index=table.index)


def original_stats(rows: pd.DataFrame, bias: str) -> pd.DataFrame:
    """Per-prompt statistics in the original's column layout (lists as JSON text)."""

    def tokens_where(row, test) -> str:
        return json.dumps([t for t, v in zip(row["tokens"], row["labels"], strict=True) if test(v)])

    rows = rows.assign(labels=rows["sentiment"] if bias == "demographic" else rows["gender"])
    if bias == "demographic":
        return pd.DataFrame(
            {
                "sentence": rows.clean,
                "corrupted": rows.corrupted,
                "#positive_sentiment_labels": [tokens_where(r, lambda v: v > 0) for _, r in rows.iterrows()],
                "#negative_sentiment_labels": [tokens_where(r, lambda v: v <= 0) for _, r in rows.iterrows()],
                "#Total_Positive_Score": rows.positive_score,
                "#Total_Negative_Score": rows.negative_score,
                "#Positive_Probs": rows.positive_mass,
                "#Negative_Probs": rows.negative_mass,
                "Bias_Type": np.where(rows.split == "pos", "Positive_Bias", "Negative_Bias"),
            }
        )
    return pd.DataFrame(
        {
            "sentence": rows.clean,
            "corrupted": rows.corrupted,
            "#Male Bias labels": [tokens_where(r, lambda v: v > 0) for _, r in rows.iterrows()],
            "#Female Bias labels": [tokens_where(r, lambda v: v < 0) for _, r in rows.iterrows()],
            "#Gender Neutral Labels": [tokens_where(r, lambda v: v == 0) for _, r in rows.iterrows()],
            "#MB_Probs": rows.male_mass,
            "#FB_Probs": rows.female_mass,
            "#GN_Probs": rows.neutral_mass,
            "Bias_Type": np.where(rows.split == "mb", "Male Bias", "Female Bias"),
        }
    )


def split_groups(eval_table: str | Path, bias: str, template: str, corruption: str, outputs: dict[str, str]) -> dict:
    """Write the two splits (plain clean/corrupted strings) and the statistics CSV."""
    check_pairing(bias, template, "split")
    table = pd.read_parquet(eval_table)
    rows = table[(table.template == template) & (table.corruption == corruption)].copy()
    if rows.empty:
        raise ValueError(f"{eval_table}: no rows for template {display(template)} corruption {display(corruption)}")
    rows["split"] = split_labels(rows, bias)
    counts = {}
    for split in SPLIT_RULE[bias][2:]:
        part = rows[rows.split == split][["example", "group", "clean", "corrupted"]]
        write_prompts(part, outputs[split])
        counts[split] = len(part)
        if part.empty:
            log.warning("%s %s %s: the %s split is empty", bias, template, corruption, split)
    with atomic_path(outputs["stats"]) as tmp:
        original_stats(rows, bias).to_csv(tmp, index=False)
    return counts


# --------------------------------------------------------------------------- EAP
def _eap_inputs(model_ref, prompts_csv, split: str, cfg: EAPConfig, where: str):
    """Prompts, token ids and batches; every input check happens here, before weights load."""
    prompts = read_prompts(prompts_csv, where)
    if prompts.empty:
        raise EmptySplitError(
            f"{where}: {prompts_csv} holds no prompt (the base model put no prompt in split {split!r}); "
            "choose another split in studies.circuits.eap.split or check the group split statistics"
        )
    return pair_batches(model_ref, prompts, cfg, where)


def pair_batches(model_ref, prompts: pd.DataFrame, cfg: EAPConfig, where: str):
    """The first ``max_prompts`` rows of ``prompts`` (columns clean, corrupted) as token ids
    and aligned batches, with the model's tokenizer (no weights load): (rows, tokenizer,
    batches, alignment counts)."""
    from biasdrift.circuits import eap

    if cfg.max_prompts is not None:
        prompts = prompts.head(cfg.max_prompts)
    tokenizer, n_ctx = open_tokenizer(model_ref, where)
    clean_ids, corr_ids = eap.encode_pairs(tokenizer, prompts.clean.tolist(), prompts.corrupted.tolist(), n_ctx, where)
    keep, align = eap.select_aligned(clean_ids, corr_ids, cfg.align)
    if not keep:
        raise EmptySplitError(f"{where}: align={cfg.align} leaves no pair (all clean/corrupted lengths differ)")
    log.info(
        "%s: %d prompt pairs (%d differ in length, align %s)", where, align["used"], align["length_differs"], cfg.align
    )
    batches = eap.make_batches(clean_ids, corr_ids, cfg.batch_size, _pad_id(tokenizer), indices=keep)
    return prompts.reset_index(drop=True), tokenizer, batches, align


def discover_circuit(
    *,
    model_ref: dict,
    prompts_csv: str | Path,
    bias: str,
    template: str,
    corruption: str,
    metric_name: str,
    eap_params: dict,
    label_params: dict,
    device: Any,
    outputs: dict[str, str],
    title_model: str,
) -> dict:
    """EAP scores of every edge (the full dense table), then the top-n list, the greedy
    circuit and its faithfulness (baseline, full graph, circuit, corrupted)."""
    from biasdrift.circuits import eap
    from biasdrift.circuits.metrics import TopKMetric, check_metric

    check_pairing(bias, template, "discover_circuit")
    check_metric(bias, metric_name, "discover_circuit")
    cfg = from_params(EAPConfig, eap_params)
    where = f"discover_circuit {title_model} {bias} {display(template)} {display(metric_name)}"
    prompts, tokenizer, batches, align = _eap_inputs(model_ref, prompts_csv, cfg.split, cfg, where)
    session = load_session(model_ref, tokenizer, device, cfg.dtype)
    labeler = make_labeler(tokenizer, prompts.clean.tolist(), label_params, device)
    metric = TopKMetric(metric_name, labeler, label_params["top_k"])
    scores = eap.attribute(session.model, session.adapter, batches, metric, method=cfg.method, ig_steps=cfg.ig_steps)
    graph = Graph(session.adapter.n_layers, session.adapter.n_heads)
    table = circuit.edge_table(graph, scores)
    flat = bool(np.all(scores == 0))
    if flat:
        log.warning(
            "%s: every EAP score is 0: the metric has no gradient on these prompts (e.g. M2 when no top-%d "
            "token is positive); the ranking below is by edge name only",
            where,
            label_params["top_k"],
        )
    meta = {
        "model": title_model,
        "model_ref": model_ref,
        "bias": bias,
        "template": template,
        "corruption": corruption,
        "metric": metric_name,
        "n_layers": graph.n_layers,
        "n_heads": graph.n_heads,
        "n_kv_heads": session.adapter.n_kv_heads,
        "examples": align["used"],
        "method": cfg.method,
        "ig_steps": cfg.ig_steps if cfg.method == "eap-ig" else None,
        "flat_metric": flat,
        "sign": "score ~ M(clean) - M(edge patched to corrupted)",
    }
    circuit.write_scores(table, outputs["scores"], meta)

    top = circuit.top_edges(table, cfg.n_edges, cfg.ranking)
    title = f"Top {cfg.n_edges} edges for {title_model} {bias} {display(template)} {display(metric_name)}"
    write_text(outputs["top_edges"], circuit.top_edges_text(top, title))

    chosen, selected = circuit.greedy_circuit(table, cfg.n_edges, cfg.ranking)
    pruned = circuit.prune_dead_nodes(table, chosen)
    values = eap.evaluate_graphs(
        session.model, session.adapter, batches, metric, [None, pruned, np.zeros(len(table), bool)]
    )
    baseline = eap.evaluate_plain(session.model, session.adapter, batches, metric)
    order = eap.batch_order(batches)
    result = {
        "baseline": float(baseline.mean()),
        "full_graph": float(values[0].mean()),
        "circuit": float(values[1].mean()),
        "corrupted": float(values[2].mean()),
    }
    result["faithfulness"] = circuit.faithfulness(result["circuit"], result["full_graph"], result["corrupted"])
    nodes = circuit.circuit_nodes(table, pruned)
    circuit_info = {
        "edges_selected": int(selected),
        "edges": table.edge[pruned].tolist(),
        "edges_pruned_away": sorted(set(table.edge[chosen]) - set(table.edge[pruned])),
        "nodes": sorted(nodes),
        "ranking": cfg.ranking,
    }
    write_json(outputs["circuit"], circuit_info)
    fields_ = {
        "Bias Type": bias,
        "Sentence Template": display(template),
        "Corruption": display(corruption),
        "Model": title_model,
        "Metric": display(metric_name),
        "Dataset path": str(prompts_csv),
        "Number of samples": align["used"],
    }
    write_text(outputs["results"], circuit.results_text(fields_, result, int(pruned.sum()), len(nodes)))
    per_example = pd.DataFrame(
        {
            "example": prompts.example.to_numpy()[order],
            "group": prompts.group.to_numpy()[order],
            "baseline": baseline,
            "full_graph": values[0],
            "circuit": values[1],
            "corrupted": values[2],
        }
    )
    write_json(
        outputs["results_json"],
        {**result, "align": align, "meta": meta, "per_example": per_example.to_dict(orient="records")},
    )
    log.info("%s: %s", where, result)
    return {**result, "edges": len(table), "circuit_edges": int(pruned.sum())}


def ablate_circuit(
    *,
    model_ref: dict,
    scores_path: str | Path,
    prompts_csv: str | Path,
    eap_params: dict,
    label_params: dict,
    levels: list[int],
    exact_check: bool,
    exact_check_max_edges: int,
    device: Any,
    outputs: dict[str, str],
) -> dict:
    """Metric with the top-n edges removed (read from the saved scores, no EAP rerun), the
    faithfulness of the greedy circuit of n edges for every level n (the size curve), and
    optionally exact single-edge patching of every edge against its EAP score."""
    from biasdrift.circuits import eap
    from biasdrift.circuits.metrics import TopKMetric

    table, meta = circuit.read_scores(scores_path)
    graph = circuit.graph_of(meta, str(scores_path))
    cfg = from_params(EAPConfig, eap_params)
    where = f"ablate_circuit {scores_path}"
    if exact_check and len(table) > exact_check_max_edges:
        raise ValueError(
            f"{where}: exact check of {len(table)} edges exceeds exact_check_max_edges={exact_check_max_edges}"
        )
    prompts, tokenizer, batches, _ = _eap_inputs(model_ref, prompts_csv, cfg.split, cfg, where)
    session = load_session(model_ref, tokenizer, device, cfg.dtype)
    labeler = make_labeler(tokenizer, prompts.clean.tolist(), label_params, device)
    metric = TopKMetric(meta["metric"], labeler, label_params["top_k"])
    masks = circuit.ablation_masks(table, levels, cfg.ranking)
    kept = circuit.size_curve_masks(table, levels, cfg.ranking)
    empty = np.zeros(len(table), dtype=bool)
    circuits = [None, empty, *(mask for _, mask in masks), *(mask for _, _, mask in kept)]
    values = eap.evaluate_graphs(session.model, session.adapter, batches, metric, circuits, graph).mean(axis=1)
    full, corrupted, removed, sized = values[0], values[1], values[2 : 2 + len(masks)], values[2 + len(masks) :]
    frame = pd.DataFrame({"edges_removed": [n for n, _ in masks], "score": removed, "full_graph": full})
    with atomic_path(outputs["ablation"]) as tmp:
        frame.to_csv(tmp, index=False)
    curve = circuit.size_curve_frame(table, kept, sized, float(full), float(corrupted))
    with atomic_path(outputs["faithfulness"]) as tmp:
        curve.to_csv(tmp, index=False)
    result: dict[str, Any] = {
        "levels": frame.edges_removed.tolist(),
        "scores": frame.score.tolist(),
        "faithfulness": dict(zip(curve.edges.tolist(), curve.faithfulness.tolist(), strict=True)),
    }
    check: dict[str, Any] = {"enabled": exact_check}
    exact = pd.DataFrame(columns=["edge", "eap", "exact"])
    if exact_check:
        singles = []
        for i in range(len(table)):
            mask = np.ones(len(table), dtype=bool)
            mask[i] = False
            singles.append(mask)
        patched = eap.evaluate_graphs(
            session.model, session.adapter, batches, metric, singles, graph, show_progress=True
        )
        exact = pd.DataFrame({"edge": table.edge, "eap": table.score, "exact": values[0] - patched.mean(axis=1)})
        check.update(
            pearson=float(np.corrcoef(exact.eap, exact.exact)[0, 1]),
            spearman=float(exact.eap.rank().corr(exact.exact.rank())),
            edges=len(exact),
        )
        log.info("%s: EAP vs exact single-edge patching: %s", where, check)
    with atomic_path(outputs["exact"]) as tmp:
        exact.to_csv(tmp, index=False)
    write_json(outputs["exact_json"], {**check, "meta": meta})
    return {**result, "exact_check": check}


# --------------------------------------------------------------------------- fine-tuning
def finetune(
    *,
    model_ref: dict,
    spec: dict,
    groups: dict | None,
    underscores: str,
    data_path: str | None,
    out_dir,
    metrics_path,
    scratch_dir,
    device,
    runtime_seed_info: dict,
) -> dict:
    from biasdrift.circuits.finetune import FinetuneConfig, finetune_causal_lm, positive_bias_texts, unrelated_texts
    from biasdrift.data import read_dataset
    from biasdrift.training import config_from_dict

    if spec["kind"] == "positive_bias":
        names, _ = load_groups(groups, underscores, f"{spec['bias']} groups")
        texts = positive_bias_texts(spec["bias"], names, spec["frames"])
    else:
        frame = read_dataset(data_path, [spec["text_column"]])
        texts = unrelated_texts(frame, spec["text_column"], spec.get("max_examples"), str(data_path))
    train = {**spec["train"], "valid_fraction": spec["valid_fraction"], "max_length": spec["max_length"]}
    cfg = config_from_dict(FinetuneConfig, train, "finetune")
    return finetune_causal_lm(
        model_ref=model_ref,
        texts=texts,
        out_dir=out_dir,
        metrics_path=metrics_path,
        scratch_dir=scratch_dir,
        cfg=cfg,
        seed=spec["seed"],
        device=device,
        run_info={"kind": spec["kind"], "bias": spec.get("bias"), "model": model_ref, **runtime_seed_info},
    )


# --------------------------------------------------------------------------- comparison
def compare_circuits(
    *, inputs: dict[str, str], n_edges: int, ranking: str, fields_: dict[str, str], out_txt, out_json
) -> dict:
    base, base_meta = circuit.read_scores(inputs["base"])
    tuned, tuned_meta = circuit.read_scores(inputs["tuned"])
    if len(base) != len(tuned) or not (base.edge.to_numpy() == tuned.edge.to_numpy()).all():
        raise ValueError(f"{inputs['base']} and {inputs['tuned']} describe different graphs")
    a = circuit.top_edges(base, n_edges, ranking).edge.tolist()
    b = circuit.top_edges(tuned, n_edges, ranking).edge.tolist()
    stats = analysis.comparison(a, b)
    write_text(out_txt, analysis.comparison_text(stats, fields_))
    prompts = read_prompts(inputs["prompts"])
    run = {k: base_meta[k] for k in ("bias", "template", "corruption", "metric")}
    change: dict[str, Any] = {}
    for name in ("base_results", "tuned_results"):
        change[name.split("_")[0]] = json.loads(Path(inputs[name]).read_text())["baseline"]
    change["delta"] = change["tuned"] - change["base"]
    metrics = {}
    base_bias, tuned_bias = pd.read_parquet(inputs["base_bias"]), pd.read_parquet(inputs["tuned_bias"])
    for label, groups in (("eap_prompts", set(prompts.group)), ("all_prompts", None)):
        for m in ("m1", "m2", "g1", "g2"):
            pair = []
            for frame in (base_bias, tuned_bias):
                rows = frame[(frame.template == run["template"]) & (frame.corruption == run["corruption"])]
                if groups is not None:
                    rows = rows[rows.group.isin(groups)]
                pair.append(float(rows[m].mean()) if len(rows) else float("nan"))
            metrics[f"{label}_{m}"] = {"base": pair[0], "tuned": pair[1], "delta": pair[1] - pair[0]}
    record = {
        **{k: v for k, v in stats.items() if k not in ("only_pretrained", "only_finetuned", "common")},
        "edges": {k: stats[k] for k in ("only_pretrained", "only_finetuned", "common")},
        "fields": fields_,
        "run": run,
        "n_edges": n_edges,
        "ranking": ranking,
        "metric_on_eap_prompts": change,
        "metrics": metrics,
        "model": base_meta.get("model"),
        "tuned_model": tuned_meta.get("model_ref", {}).get("alias"),
    }
    write_json(out_json, record)
    return {k: record[k] for k in ("overlap_percent", "intersection", "union", "metric_on_eap_prompts")}


# --------------------------------------------------------------------------- stability
def analyze_stability(*, score_files: list[str], top_k: int, ranking: str, outputs: dict[str, str]) -> dict:
    sets, layers = {}, []
    for path in score_files:
        table, meta = circuit.read_scores(path)
        key = analysis.RunKey(meta["bias"], meta["template"], meta["corruption"], meta["metric"])
        top = circuit.top_edges(table, top_k, ranking)
        sets[key] = set(top.edge)
        dist = analysis.layer_distribution(top, int(meta["n_layers"]))
        layers.append(dist.assign(run=key.label))
    matrix = analysis.overlap_matrix(sets)
    with atomic_path(outputs["matrix"]) as tmp:
        matrix.to_csv(tmp, index_label="run")
    grammatical = analysis.pair_lines(analysis.grammatical_pairs(sets), sets, "grammatical")
    bias_type = analysis.pair_lines(analysis.bias_type_pairs(sets), sets, "bias_type")
    write_text(outputs["grammatical"], "\n".join(grammatical) + ("\n" if grammatical else ""))
    write_text(outputs["bias_type"], "\n".join(bias_type) + ("\n" if bias_type else ""))
    with atomic_path(outputs["layerwise"]) as tmp:
        pd.concat(layers, ignore_index=True)[["run", "layer", "label", "edges", "percent"]].to_csv(tmp, index=False)
    return {"runs": len(sets), "grammatical_pairs": len(grammatical), "bias_type_pairs": len(bias_type)}


# --------------------------------------------------------------------------- bias summary
SUMMARY_METRICS = {"demographic": ("m2", "m1"), "gender": ("g2", "g1", "m2")}


def summarize_bias(*, tables: list[str], params: dict, out_csv, out_json) -> dict:
    """Mean metric per group class (the base model's split, and the planted classes when
    known) with bootstrap intervals, for every model and fine-tune, and the paired change
    of every fine-tune against its base model."""
    frames = []
    for path in tables:
        parts = Path(path).parts  # results/circuits/{model}/{ft}/bias/{corruption}.parquet
        frames.append(pd.read_parquet(path).assign(model=parts[-4], ft=parts[-3]))
    data = pd.concat(frames, ignore_index=True)
    boot = params["bootstrap"]
    planted = params.get("planted") or {}
    rows = []
    for (model, template, corruption), group in data.groupby(["model", "template", "corruption"]):
        bias = TEMPLATES[template].bias
        base = group[group.ft == "base"].set_index("example")
        if base.empty:
            continue
        classes = {"split": split_labels(base, bias)}
        if bias in planted:
            lookup = {name: cls for cls, names in planted[bias].items() for name in names}
            classes["planted"] = base.group.map(lambda g, lookup=lookup: lookup.get(g, "other"))
        for ft, tuned in group.groupby("ft"):
            tuned = tuned.set_index("example")
            for grouping, labels in classes.items():
                for cls in sorted(labels.unique()):
                    examples = labels.index[labels == cls]
                    for metric in SUMMARY_METRICS[bias]:
                        values = tuned.loc[tuned.index.intersection(examples), metric].to_numpy()
                        seed = boot["seed"]
                        mean, lo, hi = analysis.bootstrap_mean(values, boot["samples"], seed)
                        diff = values - base.loc[tuned.index.intersection(examples), metric].to_numpy()
                        d_mean, d_lo, d_hi = analysis.bootstrap_mean(diff, boot["samples"], seed)
                        rows.append(
                            {
                                "model": model,
                                "ft": ft,
                                "bias": bias,
                                "template": template,
                                "corruption": corruption,
                                "grouping": grouping,
                                "group": cls,
                                "metric": metric,
                                "n": len(values),
                                "mean": mean,
                                "lo": lo,
                                "hi": hi,
                                "change": d_mean,
                                "change_lo": d_lo,
                                "change_hi": d_hi,
                            }
                        )
    summary = pd.DataFrame(rows)
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False)
    agreement = {}
    for bias, classes in planted.items():
        yes = SPLIT_RULE[bias][2]
        positive_class = "positive" if bias == "demographic" else "male"
        base = data[(data.ft == "base") & data.template.isin(BIAS_TEMPLATES[bias])]
        truth = base.group.isin(classes[positive_class])
        predicted = split_labels(base, bias) == yes
        for model, idx in base.groupby("model").groups.items():
            agreement[f"{model}_{bias}"] = float((truth[idx] == predicted[idx]).mean())
    write_json(out_json, {"split_agrees_with_planted": agreement, "bootstrap": boot, "rows": len(summary)})
    return {"rows": len(summary), "split_agrees_with_planted": agreement}


def set_threads(threads: int) -> None:
    """Torch CPU threads = the rule's threads (oversubscribed threads are very slow on
    small models)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
