"""The job functions of study "circuits", one per rule and named like it:
``f(job, **files)``, ``job`` the stage's dataclass (built by snakejob.run from the glue's
params, :mod:`biasdrift.circuits.workflow`), the files the rule's named inputs and outputs;
each returns the dict that goes into the manifest. Inputs are checked (columns, empty
splits, unsupported attention layouts, prompts longer than the context) before any model
weights load."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from biasdrift.circuits import analysis, circuit
from biasdrift.circuits.finetune import FinetuneConfig
from biasdrift.circuits.graph import Graph
from biasdrift.circuits.labels import SentimentConfig
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
from biasdrift.runtime import Runtime, atomic_path, choose_device, read_json, set_threads, write_json, write_text

log = logging.getLogger(__name__)

SPLIT_RULE = {
    "demographic": ("positive_mass", "negative_mass", "pos", "neg"),
    "gender": ("male_mass", "female_mass", "mb", "fb"),
}


class EmptySplitError(ValueError):
    """A group split selected no prompt: EAP has nothing to run on."""


@dataclass(frozen=True)
class EAPConfig:
    """``studies.circuits.eap`` without its ``split`` (the split is per bias type: the
    jobs that use one get it as a field of their own). Defaults: config/schema/circuits.yaml."""

    SCHEMA: ClassVar[str] = "studies.circuits.eap"  # the schema section it mirrors: its defaults

    batch_size: int = field(metadata={"help": "Prompt pairs per batch."})
    align: str = field(metadata={"help": "left (padding + masks) or same_length."})
    dtype: str = field(metadata={"help": "auto, fp32, bf16 or fp64."})
    max_prompts: int | None = field(metadata={"help": "Cap on prompts (None = all)."})
    n_edges: int = field(metadata={"help": "Edges of the greedy circuit and top_edges.txt."})
    ranking: str = field(metadata={"help": "absolute or signed."})
    method: str = field(metadata={"help": "eap or eap-ig."})
    ig_steps: int = field(metadata={"help": "Interpolation steps of eap-ig."})


@dataclass(frozen=True)
class Labeling:
    """How next tokens are labelled (workflow.label_params): the sentiment backend, its
    model (the hf backend's model ref, else None), the gender lexicon and top-k."""

    sentiment: SentimentConfig
    sentiment_model: dict[str, Any] | None
    gender_terms: str
    top_k: int


# --------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class MakePromptsJob:
    group_source: dict[str, Any]  # what load_groups reads (workflow.group_source)
    underscores: str
    bias: str
    template: str
    corruption: str


def make_prompts(job: MakePromptsJob, *, groups: list[str], prompts: str) -> dict[str, Any]:
    """The clean/corrupted prompt pairs of one template and corruption (``groups``: the
    group file, if the groups come from one)."""
    del groups  # tracked by the rule; the group source names the file
    check_pairing(job.bias, job.template, "make_prompts")
    names, report = load_groups(job.group_source, job.underscores, f"{job.bias} groups")
    frame = build_prompts(names, job.bias, job.template, job.corruption)
    write_prompts(frame, prompts)
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


def make_labeler(tokenizer, prompts: list[str], labeling: Labeling, device: Any):
    from biasdrift.circuits.labels import GenderLexicon, make_sentiment
    from biasdrift.circuits.metrics import TokenLabeler

    sentiment = make_sentiment(labeling.sentiment, labeling.sentiment_model, device)
    return TokenLabeler(tokenizer, prompts, sentiment, GenderLexicon.from_csv(labeling.gender_terms))


# --------------------------------------------------------------------------- eval_bias
@dataclass(frozen=True)
class EvalBiasJob:
    model: dict[str, Any]  # the model ref (workflow.model_ref)
    labeling: Labeling
    batch_size: int  # studies.circuits.eap.batch_size
    dtype: str  # studies.circuits.eap.dtype
    runtime: Runtime
    seed: int


def eval_bias(
    job: EvalBiasJob,
    *,
    model: list[str],
    prompts: list[str],
    labels: list[str],
    table: str,
    summary: str,
    threads: int,
) -> dict[str, Any]:
    """Top-k next tokens of every clean prompt with their labels and all four metrics."""
    import torch

    from biasdrift.circuits import eap
    from biasdrift.circuits.metrics import describe_topk

    del model, labels  # tracked by the rule; the model ref and the labeling name them
    set_threads(threads)
    model_ref, device = job.model, choose_device(job.runtime.device)
    where = f"eval_bias {model_ref.get('alias')}"
    tokenizer, n_ctx = open_tokenizer(model_ref, where)
    frames = []
    for path in prompts:
        stem = Path(path).stem  # {bias}_{template}_{corruption}
        bias, template, corruption = stem.split("_")
        frame = read_prompts(path).assign(bias=bias, template=template, corruption=corruption)
        eap.encode_pairs(tokenizer, frame.clean.tolist(), frame.corrupted.tolist(), n_ctx, str(path))
        frames.append(frame)
    rows_in = pd.concat(frames, ignore_index=True)
    if rows_in.empty:
        raise ValueError(f"{where}: no prompts")
    session = load_session(model_ref, tokenizer, device, job.dtype)
    labeler = make_labeler(tokenizer, rows_in.clean.tolist(), job.labeling, device)
    ids = [eap.encode_prompt(tokenizer, text) for text in rows_in.clean]
    batches = eap.make_batches(ids, ids, job.batch_size, _pad_id(tokenizer))
    tracer = eap.Tracer(session.model, session.adapter)
    rows = []
    with torch.no_grad():
        for batch in batches:
            logits = tracer.run(batch.clean_ids, batch.clean_mask)
            probs = torch.softmax(logits.float(), dim=-1)
            rows += describe_topk(probs, batch.index.numpy(), labeler, job.labeling.top_k)
    details = pd.DataFrame(rows).sort_values("example").drop(columns="example").reset_index(drop=True)
    frame = pd.concat([rows_in, details], axis=1)  # describe_topk's "example" is the row of `rows_in`
    with atomic_path(table) as tmp:
        frame.to_parquet(tmp, index=False)
    result = {
        f"{t}_{c}": {m: float(g[m].mean()) for m in ("m1", "m2", "g1", "g2")}
        for (t, c), g in frame.groupby(["template", "corruption"])
    }
    result["sentiment_calls"] = labeler.sentiment.calls
    write_json(summary, result)
    return result


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


@dataclass(frozen=True)
class SplitDemographicJob:
    template: str
    corruption: str


def split_demographic(job: SplitDemographicJob, *, table: str, pos: str, neg: str, stats: str) -> dict[str, Any]:
    """The base model's demographic split (pos iff P_pos > P_neg) of one template."""
    return split_groups(table, "demographic", job.template, job.corruption, {"pos": pos, "neg": neg, "stats": stats})


@dataclass(frozen=True)
class SplitGenderJob:
    template: str
    corruption: str


def split_gender(job: SplitGenderJob, *, table: str, mb: str, fb: str, stats: str) -> dict[str, Any]:
    """The base model's gender split (mb iff P_male > P_female) of one template."""
    return split_groups(table, "gender", job.template, job.corruption, {"mb": mb, "fb": fb, "stats": stats})


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


@dataclass(frozen=True)
class DiscoverCircuitJob:
    model: dict[str, Any]  # the model ref (workflow.model_ref)
    eap: EAPConfig
    split: str  # the base model's split the prompts come from (studies.circuits.eap.split.<bias>)
    labeling: Labeling
    bias: str
    template: str
    corruption: str
    metric: str
    runtime: Runtime
    seed: int


def discover_circuit(
    job: DiscoverCircuitJob,
    *,
    model: list[str],
    prompts: str,
    labels: list[str],
    scores: str,
    top_edges: str,
    circuit: str,
    results: str,
    results_json: str,
    threads: int,
) -> dict[str, Any]:
    """EAP scores of every edge (the full dense table), then the top-n list, the greedy
    circuit and its faithfulness (baseline, full graph, circuit, corrupted)."""
    del model, labels  # tracked by the rule; the model ref and the labeling name them
    set_threads(threads)
    outputs = {"scores": scores, "top_edges": top_edges, "circuit": circuit, "results": results}
    outputs["results_json"] = results_json
    return find_circuit(job, prompts, choose_device(job.runtime.device), outputs)


def find_circuit(job: DiscoverCircuitJob, prompts_csv: str | Path, device: Any, outputs: dict[str, str]) -> dict:
    from biasdrift.circuits import eap
    from biasdrift.circuits.metrics import TopKMetric, check_metric

    bias, template, corruption, metric_name = job.bias, job.template, job.corruption, job.metric
    model_ref, cfg, label_params, title_model = job.model, job.eap, job.labeling, job.model["alias"]
    check_pairing(bias, template, "discover_circuit")
    check_metric(bias, metric_name, "discover_circuit")
    where = f"discover_circuit {title_model} {bias} {display(template)} {display(metric_name)}"
    prompts, tokenizer, batches, align = _eap_inputs(model_ref, prompts_csv, job.split, cfg, where)
    session = load_session(model_ref, tokenizer, device, cfg.dtype)
    labeler = make_labeler(tokenizer, prompts.clean.tolist(), label_params, device)
    metric = TopKMetric(metric_name, labeler, label_params.top_k)
    scores = eap.attribute(session.model, session.adapter, batches, metric, method=cfg.method, ig_steps=cfg.ig_steps)
    graph = Graph(session.adapter.n_layers, session.adapter.n_heads)
    table = circuit.edge_table(graph, scores)
    flat = bool(np.all(scores == 0))
    if flat:
        log.warning(
            "%s: every EAP score is 0: the metric has no gradient on these prompts (e.g. M2 when no top-%d "
            "token is positive); the ranking below is by edge name only",
            where,
            label_params.top_k,
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


@dataclass(frozen=True)
class AblateCircuitJob:
    model: dict[str, Any]  # the model ref (workflow.model_ref)
    eap: EAPConfig
    split: str  # the base model's split the prompts come from
    labeling: Labeling
    levels: list[int]  # studies.circuits.ablation.levels
    exact_check: bool
    exact_check_max_edges: int
    runtime: Runtime
    seed: int


def ablate_circuit(
    job: AblateCircuitJob,
    *,
    model: list[str],
    scores: str,
    prompts: str,
    labels: list[str],
    ablation: str,
    faithfulness: str,
    exact: str,
    exact_json: str,
    threads: int,
) -> dict[str, Any]:
    """Metric with the top-n edges removed (read from the saved scores, no EAP rerun), the
    faithfulness of the greedy circuit of n edges for every level n (the size curve), and
    optionally exact single-edge patching of every edge against its EAP score."""
    del model, labels  # tracked by the rule; the model ref and the labeling name them
    set_threads(threads)
    outputs = {"ablation": ablation, "faithfulness": faithfulness, "exact": exact, "exact_json": exact_json}
    return ablate(job, scores, prompts, choose_device(job.runtime.device), outputs)


def ablate(job: AblateCircuitJob, scores_path: str | Path, prompts_csv: str | Path, device: Any, outputs: dict) -> dict:
    from biasdrift.circuits import eap
    from biasdrift.circuits.metrics import TopKMetric

    model_ref, cfg, label_params = job.model, job.eap, job.labeling
    levels, exact_check, exact_check_max_edges = job.levels, job.exact_check, job.exact_check_max_edges
    table, meta = circuit.read_scores(scores_path)
    graph = circuit.graph_of(meta, str(scores_path))
    where = f"ablate_circuit {scores_path}"
    if exact_check and len(table) > exact_check_max_edges:
        raise ValueError(
            f"{where}: exact check of {len(table)} edges exceeds exact_check_max_edges={exact_check_max_edges}"
        )
    prompts, tokenizer, batches, _ = _eap_inputs(model_ref, prompts_csv, job.split, cfg, where)
    session = load_session(model_ref, tokenizer, device, cfg.dtype)
    labeler = make_labeler(tokenizer, prompts.clean.tolist(), label_params, device)
    metric = TopKMetric(meta["metric"], labeler, label_params.top_k)
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
@dataclass(frozen=True)
class FinetuneCircuitsJob:
    """One fine-tune ``studies.circuits.finetunes.<ft>`` of one base model."""

    model: dict[str, Any]  # the base model's ref
    ft: str
    kind: str
    bias: str | None
    frames: str
    text_column: str
    max_examples: int | None
    valid_fraction: float
    max_length: int
    train: FinetuneConfig
    group_source: dict[str, Any] | None  # positive_bias: what load_groups reads
    underscores: str
    seed: int
    runtime: Runtime
    scratch: str


def finetune_circuits(
    job: FinetuneCircuitsJob, *, base_model: list[str], data: list[str], model: str, metrics: str, threads: int
) -> dict[str, Any]:
    """Fine-tune one base model on positive-bias sentences or unrelated text (``data``:
    the unrelated dataset, or the group file of a positive-bias one)."""
    from biasdrift.circuits.finetune import finetune_causal_lm, positive_bias_texts, unrelated_texts
    from biasdrift.data import read_dataset

    del base_model  # tracked by the rule; the model ref names it
    set_threads(threads)
    if job.kind == "positive_bias":
        names, _ = load_groups(job.group_source, job.underscores, f"{job.bias} groups")
        texts = positive_bias_texts(job.bias, names, job.frames)
    else:
        data_path = data[0]
        frame = read_dataset(data_path, [job.text_column])
        texts = unrelated_texts(frame, job.text_column, job.max_examples, str(data_path))
    out = finetune_causal_lm(
        model_ref=job.model,
        texts=texts,
        out_dir=model,
        metrics_path=metrics,
        scratch_dir=job.scratch,
        cfg=job.train,
        valid_fraction=job.valid_fraction,
        max_length=job.max_length,
        seed=job.seed,
        device=choose_device(job.runtime.device),
        run_info={"kind": job.kind, "bias": job.bias, "model": job.model, "ft": job.ft},
    )
    return {k: out[k] for k in ("global_step", "train_loss", "final_eval", "resumed_from_step")}


# --------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class CompareCircuitsJob:
    n_edges: int  # studies.circuits.compare.n_edges
    ranking: str  # studies.circuits.eap.ranking
    report_fields: dict[str, str]  # the header lines of the report (the original's layout)


def compare_circuits(
    job: CompareCircuitsJob,
    *,
    base: str,
    tuned: str,
    base_results: str,
    tuned_results: str,
    base_bias: str,
    tuned_bias: str,
    prompts: str,
    report: str,
    json: str,
) -> dict[str, Any]:
    """Top edges of a fine-tuned model against its base model, and the change of the metric."""
    inputs = {"base": base, "tuned": tuned, "base_results": base_results, "tuned_results": tuned_results}
    inputs.update(base_bias=base_bias, tuned_bias=tuned_bias, prompts=prompts)
    return compare(inputs, job.n_edges, job.ranking, job.report_fields, report, json)


def compare(inputs: dict[str, str], n_edges: int, ranking: str, fields_: dict[str, str], out_txt, out_json) -> dict:
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
        change[name.split("_")[0]] = read_json(inputs[name])["baseline"]
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
@dataclass(frozen=True)
class AnalyzeStabilityJob:
    top_k: int  # studies.circuits.stability.top_k
    ranking: str  # studies.circuits.eap.ranking


def analyze_stability(
    job: AnalyzeStabilityJob, *, scores: list[str], matrix: str, grammatical: str, bias_type: str, layerwise: str
) -> dict[str, Any]:
    """Top-edge overlap across the runs of one model, grammatical and bias-type stability,
    and the layer distribution of the top edges."""
    score_files, top_k, ranking = scores, job.top_k, job.ranking
    outputs = {"matrix": matrix, "grammatical": grammatical, "bias_type": bias_type, "layerwise": layerwise}
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


@dataclass(frozen=True)
class SummarizeBiasJob:
    models: list[str]
    finetunes: list[str]  # "base" first
    corruptions: list[str]
    planted: dict[str, dict[str, list[str]]] | None  # the planted groups of a world, per bias type
    bootstrap: dict[str, Any]  # studies.circuits.bootstrap: samples, seed


def summarize_bias(job: SummarizeBiasJob, *, tables: list[str], csv: str, json: str) -> dict[str, Any]:
    """Mean metric per group class (the base model's split, and the planted classes when
    known) with bootstrap intervals, for every model and fine-tune, and the paired change
    of every fine-tune against its base model."""
    params = {"planted": job.planted, "bootstrap": job.bootstrap}
    out_csv, out_json = csv, json
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


# --------------------------------------------------------------------------- your own task
@dataclass(frozen=True)
class DiscoverTaskCircuitJob:
    model: dict[str, Any]  # the model ref (workflow.model_ref)
    task_name: str  # the key of studies.circuits.tasks
    eap: EAPConfig
    sizes: list[int]  # studies.circuits.tasks.<task>.sizes
    runtime: Runtime
    seed: int


def discover_task_circuit(
    job: DiscoverTaskCircuitJob,
    *,
    model: list[str],
    task: str,
    scores: str,
    top_edges: str,
    faithfulness: str,
    results_json: str,
    threads: int,
) -> dict[str, Any]:
    """EAP on your own clean/corrupted prompt pairs (a TSV) with the logit-difference
    metric; top edges, the greedy circuit and faithfulness against size."""
    from biasdrift.circuits.tasks import task_circuit

    del model  # tracked by the rule; the model ref names it
    set_threads(threads)
    return task_circuit(
        model_ref=job.model,
        task_tsv=task,
        task=job.task_name,
        cfg=job.eap,
        sizes=list(job.sizes),
        device=choose_device(job.runtime.device),
        outputs={"scores": scores, "top_edges": top_edges, "faithfulness": faithfulness, "results_json": results_json},
    )


# --------------------------------------------------------------------------- plots (the HTML report)
@dataclass(frozen=True)
class PlotCircuitsBiasJob:
    pass


def plot_circuits_bias(job: PlotCircuitsBiasJob, *, summary: str, svg: str, csv: str) -> dict[str, Any]:
    """Bias by base-model group split, before and after fine-tuning."""
    from biasdrift.circuits.plots import plot_bias_shift

    del job
    return plot_bias_shift(summary, svg, csv)


@dataclass(frozen=True)
class PlotCircuitsComparisonsJob:
    pass


def plot_circuits_comparisons(
    job: PlotCircuitsComparisonsJob, *, comparisons: list[str], svg: str, csv: str
) -> dict[str, Any]:
    """Top-edge overlap of every fine-tuned model with its base."""
    from biasdrift.circuits.plots import plot_comparisons

    del job
    return plot_comparisons(list(comparisons), svg, csv)


@dataclass(frozen=True)
class PlotCircuitsStabilityJob:
    model: str  # the model alias (the figure's title)


def plot_circuits_stability(
    job: PlotCircuitsStabilityJob,
    *,
    matrix: str,
    layerwise: str,
    heatmap: str,
    heatmap_csv: str,
    layers: str,
    layers_csv: str,
) -> dict[str, Any]:
    """Overlap heatmap and layer distribution of one model's circuits."""
    from biasdrift.circuits.plots import plot_stability

    return plot_stability(matrix, layerwise, job.model, heatmap, heatmap_csv, layers, layers_csv)


@dataclass(frozen=True)
class PlotCircuitsAblationJob:
    pass


def plot_circuits_ablation(
    job: PlotCircuitsAblationJob, *, ablations: list[str], svg: str, csv: str, exact_svg: str, exact_csv: str
) -> dict[str, Any]:
    """Ablation curves and EAP against exact patching."""
    from biasdrift.circuits.plots import plot_ablation

    del job
    return plot_ablation(list(ablations), svg, csv, exact_svg, exact_csv)
