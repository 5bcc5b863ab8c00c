"""The demo claims of every study (biasdrift.findings): each checker passes on result files
that show its effect and fails on files where the effect is gone or a file is missing."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest
import yaml

from biasdrift import findings
from biasdrift.d3m import findings as d3m_findings
from biasdrift.politune import findings as politune_findings
from biasdrift.specdec import findings as specdec_findings
from biasdrift.tinystories import findings as tinystories_findings

CONFIG = {
    "studies": {
        "specdec": {"categories": ["female", "male"], "decode": {"k": [3], "n": [10]}},
        "d3m": {"worlds": {"synth": {}}},
        "politune": {},
        "tinystories": {},
    }
}


def write_json(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def stat(mean, lo, hi):
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "sd": 0.1}


def d3m_selection(gap, se, if_wga=0.8, base_wga=0.4):
    return {
        "select_metric": "wga_cell",
        "methods": {
            "if": {"k": "0.1", "wga_cell": stat(if_wga, if_wga - 0.05, if_wga + 0.05),
                   "vs_random_same_k": {"random_mean": if_wga - gap, "gap": gap, "gap_se": se}},
            "random": {"k": "0.05", "wga_cell": stat(0.4, 0.3, 0.5)},
        },
        "baselines": {"base": {"wga_cell": stat(base_wga, base_wga - 0.2, base_wga + 0.2)}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("gap", "se", "if_wga", "holds"),
    [(0.37, 0.15, 0.8, [True, True]), (0.37, 0.2, 0.8, [False, True]), (0.0, 0.01, 0.8, [False, True]),
     (0.3, 0.1, 0.35, [True, False])],
)  # fmt: skip
def test_d3m_claims_need_a_gap_beyond_two_standard_errors_and_the_base_beaten(tmp_path, gap, se, if_wga, holds):
    write_json(tmp_path / "d3m/synth/selection.json", d3m_selection(gap, se, if_wga))
    found = d3m_findings.claims(tmp_path, CONFIG)
    assert [f.holds for f in found] == holds
    assert math.isclose(found[0].lo, gap - 2 * se) and found[0].subject == "synth if k=0.1"


def test_d3m_claim_fails_without_a_random_comparison_or_a_world_file(tmp_path):
    assert [f.holds for f in d3m_findings.claims(tmp_path, CONFIG)] == [False]  # no selection.json
    selection = d3m_selection(0.4, 0.1)
    del selection["methods"]["if"]["vs_random_same_k"]
    write_json(tmp_path / "d3m/synth/selection.json", selection)
    assert [f.holds for f in d3m_findings.claims(tmp_path, CONFIG)] == [False]


def politune_summary(*passed):
    checks = [
        {"model": "m", "run": "left/dpo", "state": "left/dpo/stepfinal", "check": f"check {i}", "value": -0.5,
         "interval": [-0.6, -0.4], "passed": p}
        for i, p in enumerate(passed)
    ]  # fmt: skip
    return {"checks": checks, "all_checks_passed": all(passed)}


def test_politune_claims_are_the_summary_checks_and_fail_with_them(tmp_path):
    write_json(tmp_path / "politune/summary.json", politune_summary(True, True))
    assert [f.holds for f in politune_findings.claims(tmp_path, CONFIG)] == [True, True]
    write_json(tmp_path / "politune/summary.json", politune_summary(True, False))
    assert [f.holds for f in politune_findings.claims(tmp_path, CONFIG)] == [True, False]
    write_json(tmp_path / "politune/summary.json", politune_summary())  # no run with a lean: nothing shown
    assert [f.holds for f in politune_findings.claims(tmp_path, CONFIG)] == [False]


def specdec_table(path, base_lo):
    rows = [
        {"condition": c, "contrast": "female − male", "level": level, "diff": 0.12, "ci_lo": lo, "ci_hi": 0.15}
        for c, lo in (("base", base_lo), ("ft", -0.01))
        for level in ("prompt", "identity")
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def test_specdec_claims_need_the_base_disparity_interval_above_zero_at_every_level(tmp_path):
    path = tmp_path / "specdec/stats/clean_binary/k3_n10/disparity.csv"
    specdec_table(path, 0.1)
    found = specdec_findings.claims(tmp_path, CONFIG)
    assert [f.holds for f in found] == [True, True]  # the ft rows are not claimed
    specdec_table(path, -0.001)
    assert [f.holds for f in specdec_findings.claims(tmp_path, CONFIG)] == [False, False]
    other = copy.deepcopy(CONFIG)
    other["studies"]["specdec"]["categories"] = ["male", "female"]  # no "male − female" rows: fails
    assert [f.holds for f in specdec_findings.claims(tmp_path, other)] == [False]


def tinystories_checks(base_passed=True, deleted=True, drop_lo=0.8, faster=True, steps=15.0):
    return {
        "feature": "Twist",
        "base": {"passed": base_passed, "rate_requested": 0.89, "rate_requested_ci": [0.79, 0.95],
                 "rate_unrequested": 0.05},
        "deletion": [{"label": "F+AT", "lr": 0.001, "seeds": 3, "deleted": deleted,
                      "rate_drop": {"mean": 0.87, "lo": drop_lo, "hi": 0.91}, "rate_after": {"mean": 0.02}}],
        "recovery": {"threshold": 0.5, "median_steps": {"control": "inf", "f-at": steps},
                     "faster_than_control": {"f-at": faster}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "holds"),
    [({}, [True, True, True]), ({"base_passed": False}, [False, True, True]), ({"deleted": False}, [True, False, True]),
     ({"drop_lo": -0.1}, [True, False, True]), ({"faster": False}, [True, True, False]),
     ({"faster": None, "steps": math.nan}, [True, True, False])],
)  # fmt: skip
def test_tinystories_claims_follow_base_deletion_and_recovery_checks(tmp_path, change, holds):
    write_json(tmp_path / "tinystories/summary/checks.json", tinystories_checks(**change))
    assert [f.holds for f in tinystories_findings.claims(tmp_path, CONFIG)] == holds


def test_runner_exits_1_when_a_claim_fails_or_a_result_is_missing(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"studies": {"politune": {}, "tinystories": {}}}))
    write_json(tmp_path / "results/politune/summary.json", politune_summary(True))
    args = ["--results", str(tmp_path / "results"), "--config", str(config), "--json", str(tmp_path / "f.json")]
    assert findings.main([*args, "politune"]) == 0
    assert json.loads((tmp_path / "f.json").read_text())["all_hold"] is True
    assert findings.main(args) == 1  # tinystories ran nowhere: its claim fails, naming the file
    assert "tinystories/summary/checks.json" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        findings.main([*args, "specdec"])  # not enabled in that config


def test_markdown_table_has_a_row_per_claim():
    rows = [findings.finding("d3m", "w", "claim", 0.5, 0.1, 0.9, True), findings.missing("d3m", "x.json")]
    table = findings.markdown(rows).splitlines()
    assert len(table) == 4 and "+0.500 [+0.100, +0.900] | yes" in table[2] and table[3].endswith("**no** |")
