"""d3m sweep: every world's check (D3M vs random removal) and the comparison with
balancing, from each world's selection.json and long table."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from biasdrift.d3m import sweep
from biasdrift.d3m import workflow as wf
from biasdrift.d3m.aggregate import welch_gap

METRIC = "wga_cell"


def world_files(tmp_path, world: str, values: dict[tuple[str, str], list[float]]):
    """A selection.json and a long table whose test ``METRIC`` per seed is ``values``."""
    rows = [
        {
            "method": m,
            "k": k,
            "seed": s,
            "split": split,
            "scope": "overall",
            "name": "all",
            "metric": METRIC,
            "value": v,
        }
        for (m, k), seeds in values.items()
        for s, v in enumerate(seeds)
        for split in ("test", "val")
    ]
    methods = {m: {"k": k, "k_count": 10.0, "mislabeled_share": 0.5} for (m, k) in values if k != "none"}
    baselines = {m: {"k": k, "k_count": 0.0} for (m, k) in values if k == "none"}
    long, selection = tmp_path / f"{world}.parquet", tmp_path / f"{world}.json"
    pd.DataFrame(rows).to_parquet(long)
    selection.write_text(json.dumps({"select_metric": METRIC, "methods": methods, "baselines": baselines}))
    return str(selection), str(long)


def test_the_sweep_counts_worlds_where_d3m_beats_random_and_compares_with_balancing(tmp_path):
    worlds = {
        # IF beats random by 0.3 with tiny seed noise, and balance by 0.1
        "clear": world_files(
            tmp_path,
            "clear",
            {
                ("if", "0.1"): [0.80, 0.81, 0.79],
                ("random", "0.1"): [0.50, 0.51, 0.49],
                ("balance", "none"): [0.70, 0.71, 0.69],
                ("base", "none"): [0.45, 0.40, 0.50],
            },
        ),
        # IF above random by 0.25 = 1.7 SE (the seeds scatter): not beyond 2 SE; below balancing
        "noisy": world_files(
            tmp_path,
            "noisy",
            {
                ("if", "0.05"): [0.50, 0.70, 0.90],
                ("random", "0.05"): [0.30, 0.45, 0.60],
                ("balance", "none"): [0.99, 1.00, 0.98],
            },
        ),
    }
    # IF's alignment in world clear: of the 10 most harmful examples (k_count 10), 6 in a|1
    # (3 of them, and one b|1 example, mislabeled: 4 of the 10 mislabeled with label 1)
    cells = ["a|1"] * 6 + ["b|1"] * 4 + ["a|1"] * 2 + ["b|0"] * 8
    mislabeled = [True] * 3 + [False] * 3 + [True] + [False] * 3 + [True] * 10
    align = pd.DataFrame(
        {
            "uid": [f"u{i:02d}" for i in range(20)],
            "cell": cells,
            "label": [int(c[-1]) for c in cells],
            "mislabeled": mislabeled,
            "A": np.arange(20.0) - 15,
        }
    )
    align.to_parquet(tmp_path / "align.parquet")
    out_csv, out_json = tmp_path / "sweep.csv", tmp_path / "sweep.json"
    sweep.summarize_sweep(
        worlds=worlds,
        descriptions={"clear": "a|1:a|0"},
        level=0.95,
        csv_path=out_csv,
        json_path=out_json,
        aligns={("clear", "if"): tmp_path / "align.parquet"},
        majority_cells={"clear": "a|1"},
    )
    table = pd.read_csv(out_csv).set_index(["world", "method"])
    clear, noisy = table.loc[("clear", "if")], table.loc[("noisy", "if")]
    assert clear["vs_random"] == pytest.approx(0.30) and clear["beats_random"]
    assert clear["vs_random_se"] == pytest.approx(math.sqrt(2 * 0.01**2 / 3))
    assert clear["vs_balance"] == pytest.approx(0.10) and clear["beats_balance"] and not clear["below_balance"]
    assert noisy["vs_random"] == pytest.approx(0.25) and not noisy["beats_random"]
    assert noisy["vs_random_se"] < noisy["vs_random"] < 2 * noisy["vs_random_se"]
    assert noisy["below_balance"] and not noisy["beats_balance"]
    assert clear["ci_low"] < 0.80 < clear["ci_high"] and clear["world_params"] == "a|1:a|0"
    assert clear["majority_share"] == pytest.approx(0.6) and clear["top_cell"] == "a|1"
    assert clear["mislabeled_majority_label_share"] == pytest.approx(0.4)
    assert math.isnan(noisy["majority_share"])  # no alignment table given: not a D3M removal to look into
    assert set(table.loc["clear"].index) == {"if", "random", "balance", "base"}
    assert math.isnan(table.loc[("clear", "balance"), "vs_balance"])
    counts = json.loads(out_json.read_text())
    assert counts["worlds"] == ["clear", "noisy"]
    assert counts["methods"]["if"] == {"worlds": 2, "beats_random": 1, "beats_balance": 1, "below_balance": 1}
    assert counts["methods"]["balance"]["beats_random"] is None


def test_one_seed_gives_no_standard_error_and_no_claim():
    gap, se = welch_gap(np.array([0.9]), np.array([0.1]))
    assert gap == pytest.approx(0.8) and math.isnan(se) and not sweep.beyond(gap, se)


def sweep_config(n_worlds: int) -> dict:
    params = {
        "biased_group": "a",
        "majority_label": 1,
        "n_majority": 300,
        "n_minority": 30,
        "n_other": 200,
        "label_noise": 0.1,
        "effect": 1.0,
    }
    datasets = {f"w{i}": {"generate": {"generator": "d3m_synthetic", "params": params}} for i in range(n_worlds)}
    worlds = {f"w{i}": {"prepare": "table", "dataset": f"w{i}"} for i in range(n_worlds)}
    d3m = {"worlds": worlds, "metrics": {"level": 0.95}, "trak": {}, "influence": {}}
    return {"datasets": datasets, "studies": {"d3m": d3m}}


def test_the_sweep_is_a_target_with_two_worlds_or_more_and_labels_each_world():
    assert not any("sweep" in t for t in wf.targets(sweep_config(1)))
    assert "results/d3m/sweep/plots/sweep.svg" in wf.targets(sweep_config(2))
    settings = wf.summarize_d3m_sweep(sweep_config(2), None)
    assert settings["worlds"] == ["w0", "w1"]
    assert settings["descriptions"]["w0"] == "a|1:a|0 = 300:30, others 200, noise 0.1, effect 1"
    assert settings["majority_cells"] == {"w0": "a|1", "w1": "a|1"}
    inputs = wf.sweep_inputs(sweep_config(2), None)
    assert inputs["selections"] == ["results/d3m/w0/selection.json", "results/d3m/w1/selection.json"]


def test_the_sweep_figure_plots_the_table_it_is_given(tmp_path):
    from biasdrift.d3m.plots import sweep_figure

    table = pd.DataFrame(
        {
            "world": ["w0", "w0", "w1", "w1"],
            "method": ["if", "random", "if", "random"],
            "metric": METRIC,
            "mean": [0.8, 0.5, 0.6, 0.55],
            "ci_low": [0.7, 0.3, 0.4, 0.5],
            "ci_high": [0.9, 0.7, 0.8, 0.6],
            "beats_random": [True, False, False, False],
            "below_balance": [False, False, True, False],
            "world_params": ["a|1:a|0 = 300:30, others 200", "", "b|0:b|1 = 300:30, others 200", ""],
        }
    )
    info = sweep_figure(table, tmp_path / "sweep.svg", tmp_path / "sweep.csv")
    assert info == {"worlds": 2, "methods": ["random", "if"]}
    assert (tmp_path / "sweep.svg").read_text().startswith("<?xml")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sweep.csv", keep_default_na=False), table)
