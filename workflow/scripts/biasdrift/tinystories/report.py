"""The study's tables, checks and figures (rules summarize_tinystories, plot_tinystories).

Checks follow spec 5.4 ("soft" statistical checks on the demo's synthetic corpus). Each
is reported with its numbers, interval and outcome, whatever the outcome: the workflow
never fails on a scientific result.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.plots import _pyplot, save_figure, save_table
from biasdrift.runtime import read_json, write_json
from biasdrift.tinystories.stories import FEATURES

log = logging.getLogger(__name__)

CONTROL = "control"


def run_fields(run: str) -> dict[str, Any]:
    """stage / protocol / lr / seed of a run path such as ``delete/f-at/lr0.001/seed0``."""
    parts = run.split("/")
    if parts[0] == "pretrain":
        return {"run": run, "stage": "pretrain", "protocol": parts[1], "lr": None, "seed": None}
    return {"run": run, "stage": "delete", "protocol": parts[1], "lr": float(parts[2][2:]), "seed": int(parts[3][4:])}


def _rate_columns(rates: dict[str, Any], prefix: str) -> dict[str, Any]:
    out = {}
    for feature, r in rates.items():
        out.update(
            {
                f"{prefix}_{feature}": r["rate"],
                f"{prefix}_{feature}_lo": r["lo"],
                f"{prefix}_{feature}_hi": r["hi"],
                f"{prefix}_{feature}_n": r["n"],
                f"{prefix}_{feature}_unparsed": r.get("unparsed", 0),
            }
        )
    return out


def eval_row(result: dict[str, Any]) -> dict[str, Any]:
    """One table row of an evaluation: losses, the rates of the detector that decides
    (``detector``: judge or markers) and, beside them, the marker rules' rates."""
    rates = result["rates"]
    row: dict[str, Any] = {"detector": rates.get("detector", "markers")}
    row.update({f"loss_{k}": v for k, v in result["losses"].items()})
    row.update(_rate_columns(rates["requested"], "requested"))
    row.update(_rate_columns(rates["unrequested"], "unrequested"))
    if row["detector"] != "markers":
        for condition in ("requested", "unrequested"):
            row.update({f"marker_{condition}_{f}": r["rate"] for f, r in rates["markers"][condition].items()})
    row.update({f"marker_logprob_{k}": v["mean"] for k, v in result["marker_logprob"].items()})
    return row


AGREEMENT_COLUMNS = [
    "scope", "run", "step", "feature", "n", "unparsed", "marker_rate", "judge_rate", "agreement", "kappa",
    "both", "marker_only", "judge_only", "neither",
]  # fmt: skip
COUNTS = ("both", "marker_only", "judge_only", "neither", "unparsed")


def agreement_table(evals: dict[str, str | Path], recoveries: dict[str, str | Path]) -> pd.DataFrame:
    """Marker rules vs judge per feature: one row per evaluated checkpoint (scope
    ``run``) and one per feature over all of them (scope ``pooled``: the 2 x 2 tables
    summed, then the statistics). Empty (header only) when no judge rated the stories."""
    from biasdrift.tinystories.judge import agreement_stats

    rows = []
    for run, path in evals.items():
        for feature, stats in (read_json(path).get("agreement") or {}).items():
            rows.append({"scope": "run", "run": run, "step": None, "feature": feature, **stats})
    for run, path in recoveries.items():
        for step, result in read_json(path)["steps"].items():
            for feature, stats in (result.get("agreement") or {}).items():
                rows.append({"scope": "run", "run": run, "step": int(step), "feature": feature, **stats})
    pooled = []
    for feature in dict.fromkeys(r["feature"] for r in rows):
        table = {k: sum(r[k] for r in rows if r["feature"] == feature) for k in COUNTS}
        pooled.append({"scope": "pooled", "run": None, "step": None, "feature": feature, **agreement_stats(table)})
    return pd.DataFrame(pooled + rows, columns=AGREEMENT_COLUMNS)


def detector_summary(agreement: pd.DataFrame) -> dict[str, Any]:
    """The checks' account of who rated the features, with the pooled agreement."""
    pooled = agreement[agreement.scope == "pooled"]
    if pooled.empty:
        return {"kind": "markers", "agreement": None}
    keep = ["n", "unparsed", "marker_rate", "judge_rate", "agreement", "kappa"]
    return {
        "kind": "judge",
        "agreement": {row.feature: {k: getattr(row, k) for k in keep} for row in pooled.itertuples()},
        "criterion": "pooled over every evaluated checkpoint; unparsed judge replies are left out of n",
    }


def results_table(evals: dict[str, str | Path]) -> pd.DataFrame:
    return pd.DataFrame([{**run_fields(run), **eval_row(read_json(path))} for run, path in evals.items()])


def recovery_table(recoveries: dict[str, str | Path], source_evals: dict[str, str | Path]) -> pd.DataFrame:
    """One row per (source, seed, step); step 0 is the source model's own evaluation."""
    rows = []
    for run, path in recoveries.items():
        _, source, seed_part = run.split("/")
        seed = int(seed_part[4:])
        base = {"run": run, "source": source, "seed": seed}
        rows.append({**base, "step": 0, **eval_row(read_json(source_evals[run]))})
        for step, result in read_json(path)["steps"].items():
            rows.append({**base, "step": int(step), **eval_row(result)})
    return pd.DataFrame(rows).sort_values(["source", "seed", "step"]).reset_index(drop=True)


def probes_table(probes: dict[str, str | Path]) -> pd.DataFrame:
    rows = [{**run_fields(run), **row} for run, path in probes.items() for row in read_json(path)["probes"]]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- statistics
def mean_interval(values) -> dict[str, float]:
    """Mean and a 95% t-interval across seeds (nan bounds for a single value)."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if values.size == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    mean = float(values.mean())
    if values.size < 2:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, "n": 1}
    half = float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": int(values.size)}


def steps_to_recover(curve: pd.DataFrame, column: str, threshold: float) -> float:
    """First checkpoint step whose rate reaches ``threshold`` (inf if none: censored).
    NaN (not known) when a checkpoint before that has no rate, e.g. every judge reply
    unparsed."""
    curve = curve.sort_values("step")
    for step, value in zip(curve["step"], curve[column], strict=True):
        if value is None or math.isnan(value):
            return math.nan
        if value >= threshold:
            return float(step)
    return math.inf


def _unknown(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _passed(condition: bool | None, *values: Any) -> bool | None:
    """The outcome of a check, or None (not decided) when it is None or any number it
    compares is missing (NaN: no rate, e.g. every judge reply unparsed)."""
    if condition is None or any(_unknown(v) for v in values):
        return None
    return bool(condition)


def _all_passed(outcomes: list[bool | None]) -> bool | None:
    """False if one failed, else None if one is undecided (or there are none), else True."""
    if False in outcomes:
        return False
    return None if not outcomes or None in outcomes else True


def compute_checks(
    results: pd.DataFrame, recovery: pd.DataFrame, probes: pd.DataFrame, layout: dict[str, Any]
) -> dict[str, Any]:
    """Spec 5.4's soft checks, with numbers and intervals."""
    feature = layout["feature"]
    col = f"requested_{feature}"
    thresholds = {"recovery_rate": 0.5, "collateral": 0.15, **layout.get("checks", {})}
    base = results[(results.stage == "pretrain") & (results.protocol == "all")].iloc[0]
    control = results[(results.stage == "pretrain") & (results.protocol == CONTROL)].iloc[0]
    checks: dict[str, Any] = {"feature": feature, "thresholds": thresholds}
    checks["base"] = {
        "rate_requested": base[col],
        "rate_requested_ci": [base[f"{col}_lo"], base[f"{col}_hi"]],
        "rate_unrequested": base[f"unrequested_{feature}"],
        "control_rate_requested": control[col],
        "passed": _passed(
            base[col] >= 0.6 and base[f"unrequested_{feature}"] <= 0.1, base[col], base[f"unrequested_{feature}"]
        ),
        "criterion": "base: rate when requested >= 0.6 and when not requested <= 0.1",
    }
    others = [f for f in FEATURES if f != feature and f"requested_{f}" in results]
    deletion = []
    for (protocol, lr), group in results[results.stage == "delete"].groupby(["protocol", "lr"], sort=True):
        drop = mean_interval(base[col] - group[col])
        after = mean_interval(group[col])
        collateral = {f: mean_interval(group[f"requested_{f}"] - base[f"requested_{f}"]) for f in others}
        changes = [abs(c["mean"]) for c in collateral.values()]
        worst = math.nan if not changes or any(math.isnan(c) for c in changes) else max(changes)
        losses = {}
        for name in ("task", "notask", "adversarial"):
            key = f"loss_{name}"
            if key in group:
                losses[name] = {"base": base[key], "deleted": mean_interval(group[key])}
        notask = losses.get("notask")
        deletion.append(
            {
                "protocol": protocol,
                "label": layout.get("protocol_labels", {}).get(protocol, protocol),
                "lr": lr,
                "seeds": len(group),
                "rate_after": after,
                "rate_drop": drop,
                "collateral_change": collateral,
                "largest_collateral_change": worst,
                "losses": losses,
                "deleted": _passed(drop["mean"] >= 0.4 and after["mean"] <= 0.2, drop["mean"], after["mean"]),
                "little_collateral": _passed(worst <= thresholds["collateral"], worst),
                "notask_loss_within_10pct": _passed(abs(notask["deleted"]["mean"] / notask["base"] - 1) <= 0.1)
                if notask
                else None,
            }
        )
    checks["deletion"] = deletion
    checks["recovery"] = recovery_checks(recovery, col, thresholds["recovery_rate"])
    checks["probes"] = probe_checks(probes, feature)
    return checks


def recovery_checks(recovery: pd.DataFrame, col: str, threshold: float) -> dict[str, Any]:
    per_run = []
    for (source, seed), curve in recovery.groupby(["source", "seed"], sort=True):
        per_run.append(
            {
                "source": source,
                "seed": int(seed),
                "steps": steps_to_recover(curve, col, threshold),
                "final_rate": float(curve.sort_values("step")[col].iloc[-1]),
            }
        )
    frame = pd.DataFrame(per_run)
    medians = {s: float(np.median(g["steps"])) for s, g in frame.groupby("source")}
    control = medians.get(CONTROL, math.inf)
    faster = {s: _passed(m < control, m, control) for s, m in medians.items() if s != CONTROL}
    return {
        "threshold": threshold,
        "runs": per_run,
        "median_steps": medians,
        "faster_than_control": faster,
        "all_deleted_faster": _all_passed(list(faster.values())),
        "criterion": f"median (over seeds) first checkpoint with rate >= {threshold}; inf = never within the run",
    }


def probe_checks(probes: pd.DataFrame, feature: str) -> dict[str, Any]:
    if probes.empty:
        return {}
    rows = probes[probes.feature == feature]
    best = {run: float(g["balanced_accuracy"].max()) for run, g in rows.groupby("run")}
    return {
        "best_layer_balanced_accuracy": best,
        "above_chance": _passed(all(v > 0.5 for v in best.values())),
        "criterion": "best-layer balanced accuracy of the feature probe > 0.5 (chance) for every model",
    }


def summarize(
    *,
    evals: list[str],
    probes: list[str],
    recoveries: list[str],
    layout: dict[str, Any],
    out_results,
    out_recovery,
    out_probes,
    out_checks,
    out_agreement,
) -> dict[str, Any]:
    """Rule summarize_tinystories."""
    model_runs, recovery_runs = layout["model_runs"], layout["recovery_runs"]
    results = results_table(dict(zip(model_runs, evals, strict=True)))
    source_evals = {}
    for run in recovery_runs:
        _, source, seed_part = run.split("/")
        source_run = layout["recovery_sources"][source].format(seed=seed_part[4:])
        source_evals[run] = evals[model_runs.index(source_run)]
    recovery = recovery_table(dict(zip(recovery_runs, recoveries, strict=True)), source_evals)
    probe_frame = probes_table(dict(zip(model_runs, probes, strict=True)))
    labels = layout.get("protocol_labels", {})
    bases = {"all": "base (all data)", CONTROL: f"control (never saw {layout['feature']})"}
    results.insert(2, "label", results.protocol.map(lambda p: labels.get(p, bases.get(p, p))))
    recovery.insert(2, "label", recovery.source.map(lambda s: _source_label(s, labels)))
    checks = compute_checks(results, recovery, probe_frame, layout)
    agreement = agreement_table(
        dict(zip(model_runs, evals, strict=True)), dict(zip(recovery_runs, recoveries, strict=True))
    )
    checks["detector"] = detector_summary(agreement)
    save_table(agreement, out_agreement)
    save_table(results, out_results)
    save_table(recovery, out_recovery)
    save_table(probe_frame, out_probes)
    write_json(out_checks, strict_json(checks))
    log.info("checks: %s", checks)
    return {"base": checks["base"], "recovery": checks["recovery"]["median_steps"]}


def strict_json(obj: Any) -> Any:
    """NaN -> None and infinities -> "inf" (strict JSON has neither), numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
    return obj


def _source_label(source: str, labels: dict[str, str]) -> str:
    if source == CONTROL:
        return "control"
    protocol, lr = source.rsplit("-lr", 1)
    return f"{labels.get(protocol, protocol)}, lr {lr}"


# --------------------------------------------------------------------------- figures
def plot_recovery(recovery: pd.DataFrame, feature: str, svg_path, csv_path) -> None:
    """Feature rate (requested) and task loss against recovery step, symlog x; mean over
    seeds with the min-max band."""
    col = f"requested_{feature}"
    value_cols = [c for c in (col, "loss_task") if c in recovery]
    table = recovery.groupby(["source", "label", "step"])[value_cols].agg(["mean", "min", "max"])
    table.columns = [f"{a}_{b}" for a, b in table.columns]
    table = table.reset_index()
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(value_cols), figsize=(6 * len(value_cols), 4), squeeze=False)
    for ax, name in zip(axes[0], value_cols, strict=True):
        for source, group in table.groupby("source", sort=True):
            style = {"color": "black", "linestyle": "--"} if source == CONTROL else {}
            line = ax.plot(group["step"], group[f"{name}_mean"], marker="o", label=group["label"].iloc[0], **style)
            ax.fill_between(
                group["step"], group[f"{name}_min"], group[f"{name}_max"], alpha=0.15, color=line[0].get_color()
            )
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("recovery step")
        ax.set_ylabel(f"{feature} rate when requested" if name == col else "task loss")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Recovery of {feature}: deleted models vs the control (mean over seeds, min-max band)")
    save_figure(fig, svg_path)
    save_table(table, csv_path)


def plot_probes(probes: pd.DataFrame, results: pd.DataFrame, feature: str, svg_path, csv_path) -> None:
    """Balanced accuracy of the feature probe by layer, per model group (mean over seeds)."""
    labels = dict(zip(results.run, results.label, strict=True))
    frame = probes[probes.feature == feature].copy()
    frame["model"] = [
        (labels[r] if s == "pretrain" else f"{labels[r]}, lr {lr:g}")
        for r, s, lr in zip(frame.run, frame.stage, frame.lr, strict=True)
    ]
    table = frame.groupby(["model", "layer"])["balanced_accuracy"].agg(["mean", "min", "max"]).reset_index()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for model, group in table.groupby("model", sort=True):
        ax.plot(group["layer"], group["mean"], marker="o", label=model)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xticks(sorted(table["layer"].unique()))
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"{feature} probe balanced accuracy")
    ax.set_title(f"Is {feature} still linearly decodable from the story?")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, svg_path)
    save_table(table, csv_path)


def plot_grid(results: pd.DataFrame, feature: str, svg_path, csv_path) -> None:
    """Heatmap of the feature rate (requested) after deletion: protocol x learning rate."""
    col = f"requested_{feature}"
    deleted = results[results.stage == "delete"]
    table = deleted.groupby(["label", "lr"])[col].agg(["mean", "std", "count"]).reset_index()
    grid = table.pivot(index="label", columns="lr", values="mean")
    base = float(results[(results.stage == "pretrain") & (results.protocol == "all")][col].iloc[0])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * grid.shape[1], 1.2 + 0.6 * grid.shape[0]))
    image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [f"{c:g}" for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), list(grid.index))
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            value = grid.iat[i, j]
            ax.text(j, i, "-" if math.isnan(value) else f"{value:.2f}", ha="center", va="center", color="white")
    ax.set_xlabel("learning rate")
    ax.set_title(f"{feature} rate after deletion (base: {base:.2f})")
    fig.colorbar(image, ax=ax, label=f"{feature} rate when requested")
    save_figure(fig, svg_path)
    save_table(table, csv_path)


def plot_all(*, results_csv, recovery_csv, probes_csv, feature: str, outputs: dict[str, str]) -> dict[str, Any]:
    """Rule plot_tinystories."""
    results, recovery, probes = (pd.read_csv(p) for p in (results_csv, recovery_csv, probes_csv))
    plot_recovery(recovery, feature, outputs["recovery_svg"], outputs["recovery_csv"])
    plot_probes(probes, results, feature, outputs["probes_svg"], outputs["probes_csv"])
    plot_grid(results, feature, outputs["grid_svg"], outputs["grid_csv"])
    return {"figures": sorted(v for k, v in outputs.items() if k.endswith("svg"))}
