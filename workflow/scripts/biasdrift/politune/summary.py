"""Rule summarize_politune: every state's probe results as tables with intervals, the
shift of each checkpoint against its base, the checkpoint chosen per run by the
configured rule, and whether each run moved the way its side leans.

Tables (CSV): ``scores`` (per model, state and axis: score, interval, shift against the
base with a paired interval), ``items`` (per statement and state), ``preferences``
(held-out accuracy and margins per state and side), ``training`` (the trainers' log
histories), ``judge`` (mean judge score per state) and, with ``probe.compass``,
``compass`` (per model and state: the Political Compass economic and social
coordinates, mean over answer sheets with intervals, and the shift against the base).
``summary.json`` holds the chosen checkpoint of each run, its scores and the checks.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.politune.preference import summarise as summarise_pairs
from biasdrift.politune.probe import (
    CompassConfig,
    axis_scores,
    bootstrap_mean,
    compass_coordinates,
    compass_shift,
    compass_summary,
    item_scores,
    shift_scores,
)
from biasdrift.politune.workflow import parse_state
from biasdrift.runtime import read_json, write_json

log = logging.getLogger(__name__)

LEAN_SIGN = {"left": -1, "right": 1}
TABLES = ("scores", "item_scores", "preferences", "training", "judge", "compass")
# the columns that name one model state, first in every summary table
STATE_COLUMNS = ["model", "state", "side", "method", "step", "step_number"]
COMPASS_FIELDS = (
    "economic",
    "economic_low",
    "economic_high",
    "social",
    "social_low",
    "social_high",
    "n_samples",
    "n_unparsed",
    "n_clipped",
)
COMPASS_SHIFT_FIELDS = tuple(f"{a}_shift{s}" for a in ("economic", "social") for s in ("", "_low", "_high"))
COMPASS_COLUMNS = [
    *STATE_COLUMNS,
    *COMPASS_FIELDS,
    *COMPASS_SHIFT_FIELDS,
]
SCORE_COLUMNS = [*STATE_COLUMNS, "axis", "score", "ci_low", "ci_high"]
JUDGE_COLUMNS = [
    *STATE_COLUMNS,
    "judge_mean",
    "judge_low",
    "judge_high",
    "n_answers",
    "n_unscored",
]


def _read(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def step_number(step: str, final_step: int | None) -> int:
    if step == "base":
        return 0
    return int(final_step) if step == "final" else int(step)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def final_steps(layout: dict[str, Any]) -> dict[tuple[str, str, str], int]:
    """(model, side, method) -> the run's last optimizer step."""
    return {(r["model"], r["side"], r["method"]): read_json(r["metrics"])["global_step"] for r in layout["runs"]}


def state_keys(model: str, state: str, finals: dict[tuple[str, str, str], int]) -> dict[str, Any]:
    parts = parse_state(state)
    final = finals.get((model, parts["side"], parts["method"]))
    return {"model": model, "state": state, **parts, "step_number": step_number(parts["step"], final)}


def collect(layout: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Read every state's files into long tables (scores, items, preferences, training,
    judge)."""
    n_boot, confidence, seed = layout["bootstrap"], layout["confidence"], layout["seed"]
    compass = CompassConfig(**layout["compass"]) if layout.get("compass") else None
    finals = final_steps(layout)
    scores, items, prefs, coords = [], [], [], []
    for model, by_state in layout["states"].items():
        base_items = base_sheets = None
        for state in sorted(by_state, key=lambda s: s != "base"):  # the base first
            files, keys = by_state[state], state_keys(model, state, finals)
            statements = _read(files["statements"])
            if not statements.empty:
                state_items = item_scores(statements)
                axes = axis_scores(state_items, n_boot, confidence, seed)
                if state == "base":
                    base_items = state_items
                elif base_items is not None:
                    axes = axes.merge(shift_scores(state_items, base_items, n_boot, confidence, seed), on="axis")
                scores.append(axes.assign(**keys))
                items.append(state_items.assign(**keys))
                if compass is not None:
                    sheets = compass_coordinates(statements, compass)
                    row = {**keys, **compass_summary(sheets, n_boot, confidence, seed)}
                    if state == "base":
                        base_sheets = sheets
                    elif base_sheets is not None:
                        row.update(compass_shift(sheets, base_sheets, n_boot, confidence, seed))
                    coords.append(row)
            pairs = _read(files["preferences"])
            for pair_side, group in pairs.groupby("side", sort=True) if not pairs.empty else []:
                prefs.append({**keys, "pairs": pair_side, **summarise_pairs(group, confidence, n_boot, seed)})
    training = [
        {"model": r["model"], "side": r["side"], "method": r["method"], **entry}
        for r in layout["runs"]
        for entry in read_json(r["metrics"])["log_history"]
    ]
    return {
        "scores": pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(columns=SCORE_COLUMNS),
        "item_scores": pd.concat(items, ignore_index=True) if items else pd.DataFrame(columns=SCORE_COLUMNS),
        "preferences": pd.DataFrame(prefs),
        "training": pd.DataFrame(training),
        "judge": judge_means(layout, finals),
        "compass": pd.DataFrame(coords, columns=COMPASS_COLUMNS),
    }


def judge_means(layout: dict[str, Any], finals: dict[tuple[str, str, str], int]) -> pd.DataFrame:
    """Mean judge score (0-20) per model and state with a bootstrap interval over answers."""
    rows = []
    rng = np.random.default_rng(layout["seed"])
    for model, path in layout.get("judge", {}).items():
        judged = _read(path)
        for state, group in judged.groupby("state", sort=True) if not judged.empty else []:
            scores = group["judge_score"].to_numpy(float)
            mean, low, high = bootstrap_mean(scores, layout["bootstrap"], layout["confidence"], rng)
            rows.append(
                {
                    **state_keys(model, state, finals),
                    "judge_mean": mean,
                    "judge_low": low,
                    "judge_high": high,
                    "n_answers": len(group),
                    "n_unscored": int(np.isnan(scores).sum()),
                }
            )
    return pd.DataFrame(rows, columns=JUDGE_COLUMNS)


def select_state(run_states: pd.DataFrame, rule: str, fixed_step: int | None) -> str:
    """The state a run reports: ``final``, ``best_heldout_pref_acc`` (ties: the earlier
    step) or ``fixed_step``."""
    if rule == "final":
        return run_states.loc[run_states["step"] == "final", "state"].iloc[0]
    if rule == "fixed_step":
        return run_states.loc[run_states["step"] == str(fixed_step), "state"].iloc[0]
    if rule == "best_heldout_pref_acc":
        ranked = run_states.dropna(subset=["accuracy"]).sort_values(
            ["accuracy", "step_number"], ascending=[False, True]
        )
        if ranked.empty:
            raise ValueError("best_heldout_pref_acc needs held-out pairs (data.heldout_fraction > 0)")
        return ranked["state"].iloc[0]
    raise ValueError(f"unknown checkpoint selection rule {rule!r}")


def run_checks(lean: str | None, shifts: list[dict[str, Any]], heldout: dict[str, Any]) -> list[dict[str, Any]]:
    """Did the run move the way its side leans (on every axis, interval excluding zero),
    and does it prefer held-out chosen answers above chance (interval above 0.5)?"""
    if lean not in LEAN_SIGN:
        return []
    sign = LEAN_SIGN[lean]
    checks = []
    for row in shifts:
        low = min(sign * row["shift_low"], sign * row["shift_high"])  # the bound nearest zero
        checks.append(
            {
                "check": f"{row['axis']} shift towards {lean}",
                "value": row["shift"],
                "interval": [row["shift_low"], row["shift_high"]],
                "passed": bool(sign * row["shift"] > 0 and low > 0),
            }
        )
    if heldout.get("accuracy") is not None:
        checks.append(
            {
                "check": "held-out preference accuracy above chance",
                "value": heldout["accuracy"],
                "interval": [heldout["accuracy_low"], heldout["accuracy_high"]],
                "passed": bool(heldout["accuracy_low"] > 0.5),
            }
        )
    return checks


SCORE_FIELDS = ("score", "ci_low", "ci_high", "n_items", "n_unparsed")
SHIFT_FIELDS = ("shift", "shift_low", "shift_high")
HELDOUT_FIELDS = ("accuracy", "accuracy_low", "accuracy_high", "margin", "margin_low", "margin_high", "n_pairs")
RAW_FIELDS = ("raw_accuracy", "raw_accuracy_low", "raw_accuracy_high", "n_pairs")


def _rows(frame: pd.DataFrame, model: str, state: str, **extra: str) -> pd.DataFrame:
    """The rows of one model state (empty tables stay empty)."""
    if frame.empty:
        return frame
    keep = (frame["model"] == model) & (frame["state"] == state)
    for column, value in extra.items():
        keep &= frame[column] == value
    return frame[keep]


def _axes(frame: pd.DataFrame, fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {row["axis"]: {f: row.get(f) for f in fields if f in row} for row in _records(frame)}


def _first(frame: pd.DataFrame, fields: tuple[str, ...]) -> dict[str, Any]:
    records = _records(frame)
    return {f: records[0].get(f) if records else None for f in fields}


def summarize_run(run: dict[str, Any], layout: dict[str, Any], tables: dict[str, pd.DataFrame], final: int) -> dict:
    """The checkpoint a run reports (by the selection rule) with its scores and checks."""
    model, name = run["model"], f"{run['side']}/{run['method']}"
    steps = [*map(str, layout["steps"]), "final"]
    candidates = pd.DataFrame(
        {
            "state": [f"{name}/step{step}" for step in steps],
            "step": steps,
            "step_number": [step_number(step, final) for step in steps],
        }
    )
    prefs = tables["preferences"]
    accuracy = [
        _first(_rows(prefs, model, st, pairs=run["side"]), ("accuracy",))["accuracy"] for st in candidates["state"]
    ]
    candidates["accuracy"] = [np.nan if a is None else a for a in accuracy]
    chosen = select_state(candidates, layout["select"], layout["select_step"])
    scores = _rows(tables["scores"], model, chosen)
    heldout = _first(_rows(prefs, model, chosen, pairs=run["side"]), HELDOUT_FIELDS)
    shifts = _records(scores[["axis", *SHIFT_FIELDS]]) if "shift" in scores else []
    result = {
        "lean": run["lean"],
        "selected_state": chosen,
        "selected_step": int(candidates.loc[candidates["state"] == chosen, "step_number"].iloc[0]),
        "final_step": final,
        "axes": _axes(scores, SCORE_FIELDS + SHIFT_FIELDS),
        "heldout": heldout,
        "checks": run_checks(run["lean"], shifts, heldout),
    }
    if not tables["judge"].empty:
        result["judge"] = _first(_rows(tables["judge"], model, chosen), ("judge_mean", "judge_low", "judge_high"))
    if not tables["compass"].empty:
        result["compass"] = _first(_rows(tables["compass"], model, chosen), COMPASS_FIELDS + COMPASS_SHIFT_FIELDS)
    return result


def build_summary(layout: dict[str, Any], tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    finals = final_steps(layout)
    if layout["judge_kind"]:
        judge = layout["judge_kind"]
    else:
        judge = "skipped: no judge configured" if layout["free_text"] else "no free-text prompts configured"
    summary: dict[str, Any] = {
        "selection": {"rule": layout["select"], "step": layout["select_step"]},
        "judge": judge,
        "compass": layout.get("compass"),  # the coordinate method's constants (null = off)
        "models": {},
        "checks": [],
    }
    for model in layout["states"]:
        base: dict[str, Any] = {"axes": _axes(_rows(tables["scores"], model, "base"), SCORE_FIELDS)}
        base["raw_preference_accuracy"] = {
            r["pairs"]: {f: r.get(f) for f in RAW_FIELDS} for r in _records(_rows(tables["preferences"], model, "base"))
        }
        if not tables["judge"].empty:
            base["judge"] = _first(_rows(tables["judge"], model, "base"), ("judge_mean", "judge_low", "judge_high"))
        if not tables["compass"].empty:
            base["compass"] = _first(_rows(tables["compass"], model, "base"), COMPASS_FIELDS)
        runs = {}
        for run in (r for r in layout["runs"] if r["model"] == model):
            name = f"{run['side']}/{run['method']}"
            result = summarize_run(run, layout, tables, finals[(model, run["side"], run["method"])])
            runs[name] = result
            summary["checks"] += [
                {"model": model, "run": name, "state": result["selected_state"], **c} for c in result["checks"]
            ]
        summary["models"][model] = {"base": base, "runs": runs}
    summary["all_checks_passed"] = all(c["passed"] for c in summary["checks"]) if summary["checks"] else None
    return summary


def summarize(layout: dict[str, Any], out: dict[str, str | Path]) -> dict[str, Any]:
    """Write the tables and summary.json; return the checks for the manifest."""
    from biasdrift.plots import save_table

    tables = collect(layout)
    for name in TABLES:
        save_table(tables[name], out[name])
    summary = build_summary(layout, tables)
    write_json(out["summary"], summary)
    for check in summary["checks"]:
        log.info("%s %s: %s (%s) -> %s", check["model"], check["run"], check["check"], check["value"], check["passed"])
    if layout["free_text"] and layout["judge_kind"] is None:
        log.warning("free-text answers were generated but no judge is configured: they are not scored")
    return {"all_checks_passed": summary["all_checks_passed"], "checks": len(summary["checks"])}
