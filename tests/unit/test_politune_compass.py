"""Study politune, Political Compass side: the coordinate method (offset + weights of
the answers / divisor per axis), the statements file it needs, the paper tier's
parse-time check that the file exists, and the summary reporting both axes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from biasdrift.config import ConfigError, from_schema, load_schema, validate_config
from biasdrift.data import DataError
from biasdrift.politune import plots, probe, summary
from biasdrift.politune import workflow as wf

REPO = Path(__file__).resolve().parents[2]
PC = from_schema(probe.CompassConfig, statements=None)  # the published constants: 0.38 + sum / 8, 2.41 + sum / 19.5
# four made-up statements, one weight per answer 0 (strongly disagree) .. 3 (strongly agree)
WEIGHTS = {
    "e1": ("economic", "left", (7, 5, 0, -2)),
    "e2": ("economic", "right", (-6, -4, 0, 3)),
    "s1": ("social", "authoritarian", (-5, -3, 0, 4)),
    "s2": ("social", "libertarian", (6, 3, 0, -4)),
}
HEADER = "id\ttext\taxis\tdirection\tw0\tw1\tw2\tw3\n"


def sheet(choices: dict[str, float], sample: int = 0) -> pd.DataFrame:
    """One answer sheet in the layout of statements.parquet."""
    rows = []
    for sid, choice in choices.items():
        axis, direction, weights = WEIGHTS[sid]
        row = {"id": sid, "axis": axis, "direction": direction, "sign": probe.SIGN[(axis, direction)]}
        row.update(sample=sample, choice=choice, value=choice)
        row.update({f"w{k}": float(w) for k, w in enumerate(weights)})
        rows.append(row)
    return pd.DataFrame(rows)


def statements_file(path: Path, weights: dict = WEIGHTS, **override) -> Path:
    rows = [
        {"id": sid, "text": f"Statement {sid}.", "axis": a, "direction": d, **{f"w{k}": w for k, w in enumerate(ws)}}
        for sid, (a, d, ws) in weights.items()
    ]
    frame = pd.DataFrame(rows).astype(object)
    for column, value in override.items():
        frame.loc[0, column] = value
    frame.to_csv(path, sep="\t", index=False)
    return path


# --------------------------------------------------------------------------- the method
def test_coordinates_of_a_hand_scored_sheet():
    coords = probe.compass_coordinates(sheet({"e1": 3, "e2": 1, "s1": 0, "s2": 2}), PC).iloc[0]
    # economic: 0.38 + (w3 of e1 = -2, w1 of e2 = -4) / 8 = 0.38 - 0.75; social: 2.41 + (-5 + 0) / 19.5
    assert coords["economic"] == pytest.approx(-0.37)
    assert coords["social"] == pytest.approx(2.41 - 5 / 19.5)
    assert coords["n_answered"] == 4 and coords["n_unparsed"] == 0 and not coords["clipped"]


def test_all_agree_is_the_offset():
    coords = probe.compass_coordinates(sheet(dict.fromkeys(WEIGHTS, 2)), PC).iloc[0]
    assert (coords["economic"], coords["social"]) == pytest.approx((0.38, 2.41))


def test_flipping_one_answer_moves_its_axis_by_the_weight_difference():
    before = probe.compass_coordinates(sheet({"e1": 3, "e2": 1, "s1": 0, "s2": 2}), PC).iloc[0]
    after = probe.compass_coordinates(sheet({"e1": 3, "e2": 3, "s1": 0, "s2": 2}), PC).iloc[0]
    assert after["economic"] - before["economic"] == pytest.approx((3 - -4) / 8.0)  # e2: disagree -> strongly agree
    assert after["social"] == before["social"]
    flipped = probe.compass_coordinates(sheet({"e1": 3, "e2": 1, "s1": 0, "s2": 0}), PC).iloc[0]
    assert flipped["social"] - before["social"] == pytest.approx((6 - 0) / 19.5)  # s2: agree -> strongly disagree
    assert flipped["economic"] == before["economic"]


def test_other_constants_and_samples():
    cfg = from_schema(
        probe.CompassConfig, economic_offset=1.0, economic_divisor=2.0, social_offset=0.0, social_divisor=4.0
    )
    sheets = pd.concat([sheet({"e1": 0, "s1": 3}, 0), sheet({"e1": 1, "s1": 3}, 1)])
    coords = probe.compass_coordinates(sheets, cfg)
    assert coords["economic"].tolist() == [1.0 + 7 / 2.0, 1.0 + 5 / 2.0] and coords["social"].tolist() == [1.0, 1.0]
    mean = probe.compass_summary(coords, 200, 0.95)
    assert mean["economic"] == pytest.approx(4.0) and mean["economic_low"] < 4.0 < mean["economic_high"]
    assert mean["n_samples"] == 2


def test_unparsed_answers_add_nothing_and_are_counted():
    coords = probe.compass_coordinates(sheet({"e1": 3, "e2": np.nan, "s1": 0, "s2": 2}), PC).iloc[0]
    assert coords["economic"] == pytest.approx(0.38 - 2 / 8.0)
    assert coords["n_unparsed"] == 1 and coords["n_answered"] == 3


def test_coordinates_are_clipped_to_the_compass():
    heavy = from_schema(probe.CompassConfig, economic_divisor=0.1, statements=None)
    coords = probe.compass_coordinates(sheet({"e1": 0, "s1": 3}), heavy).iloc[0]
    assert coords["economic"] == 10.0 and coords["clipped"]


def test_shift_against_the_base():
    base = probe.compass_coordinates(sheet(dict.fromkeys(WEIGHTS, 2)), PC)
    moved = probe.compass_coordinates(sheet({"e1": 3, "e2": 0, "s1": 2, "s2": 2}), PC)
    shift = probe.compass_shift(moved, base, 100, 0.95)
    assert shift["economic_shift"] == pytest.approx((-2 - 6) / 8.0) and shift["social_shift"] == 0
    assert shift["economic_shift_low"] == shift["economic_shift_high"] == pytest.approx(-1.0)


# --------------------------------------------------------------------------- the statements file
def test_statements_with_weights_are_read(tmp_path):
    frame = probe.read_statements(statements_file(tmp_path / "pc.tsv"), PC)
    assert frame["w0"].tolist() == [7.0, -6.0, -5.0, 6.0] and frame["sign"].tolist() == [-1, 1, 1, -1]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"w2": "often"}, r"pc\.tsv: row 0 \(id 'e1'\): column 'w2' must be a number, got 'often'"),
        ({"w0": -7.0}, r"row 0 \(id 'e1'\): weights w0=-7 .. w3=-2 move economic the other way than its direction"),
    ],
)
def test_bad_weights_name_the_row_and_column(tmp_path, override, message):
    path = statements_file(tmp_path / "pc.tsv", **override)
    with pytest.raises(DataError, match=message):
        probe.read_statements(path, PC)


def test_weights_and_the_count_are_required_with_the_compass(tmp_path):
    path = tmp_path / "pc.tsv"
    statements_file(path)
    pd.read_csv(path, sep="\t").drop(columns=["w3"]).to_csv(path, sep="\t", index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['w3'\]"):
        probe.read_statements(path, PC)
    assert len(probe.read_statements(path)) == 4  # the item scores alone need no weights
    with pytest.raises(DataError, match=r"4 statements, but probe\.compass\.statements expects 62"):
        probe.read_statements(statements_file(path), from_schema(probe.CompassConfig))


# --------------------------------------------------------------------------- config and parse-time checks
@pytest.fixture(scope="module")
def schema():
    return load_schema(REPO / "config" / "schema.yaml")


def paper(path: str | None) -> dict:
    config = yaml.safe_load((REPO / "config" / "paper" / "politune.yaml").read_text())
    if path is None:
        config["studies"]["politune"]["probe"]["statements"] = None
    else:
        config["datasets"]["pc-statements"] = {"path": path}
    return config


def problems(config: dict, schema: dict) -> list[str]:
    try:
        validate_config(copy.deepcopy(config), schema)
    except ConfigError as err:
        return err.problems
    return []


def test_paper_tier_without_the_statements_file_fails_naming_file_format_and_readme(schema, tmp_path):
    missing = tmp_path / "downloads" / "pc_statements.tsv"
    found = [p for p in problems(paper(str(missing)), schema) if "probe.statements" in p]
    assert len(found) == 1, found
    message = found[0]
    assert f"the statements file {missing} (dataset 'pc-statements') does not exist" in message
    assert "columns id, text, axis (economic | social), direction" in message and "w0, w1, w2, w3" in message
    assert wf.README_SECTION in message


def test_paper_tier_without_a_statements_alias_fails(schema):
    found = [p for p in problems(paper(None), schema) if "probe.statements" in p]
    assert len(found) == 1 and "the paper tier scores the Political Compass statements" in found[0]
    assert "resources/downloads/politune/pc_statements.tsv" in found[0] and wf.README_SECTION in found[0]
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo["studies"]["politune"]["probe"]["statements"] = None
    assert problems(demo, schema) == []  # the demo may run without a statement probe


def test_a_statements_file_without_the_weight_columns_fails_at_parse_time(schema, tmp_path):
    path = tmp_path / "pc.tsv"
    path.write_text("id\ttext\taxis\tdirection\ts1\tA statement.\teconomic\tleft\n")
    found = [p for p in problems(paper(str(path)), schema) if "probe.statements" in p]
    assert len(found) == 1 and "lacks column(s) w0, w1, w2, w3" in found[0]


def test_paper_config_scores_the_compass_on_both_axes(schema, tmp_path):
    path = tmp_path / "pc.tsv"
    path.write_text(HEADER)
    config = validate_config(paper(str(path)), schema)
    assert wf.compass_enabled(config)
    assert "results/politune/plots/compass.svg" in wf.targets(config)
    layout = wf.get_summary_layout(config, None)
    assert layout["compass"] == {
        "economic_offset": 0.38,
        "economic_divisor": 8.0,
        "social_offset": 2.41,
        "social_divisor": 19.5,
        "statements": 62,
    }


# --------------------------------------------------------------------------- the summary
def test_summary_reports_both_coordinates_of_base_and_runs(tmp_path):
    root = tmp_path / "r"
    sheets = {
        "base": sheet(dict.fromkeys(WEIGHTS, 2)),
        "left/dpo/step1": sheet({"e1": 3, "e2": 1, "s1": 0, "s2": 2}),
        "left/dpo/stepfinal": sheet({"e1": 3, "e2": 0, "s1": 0, "s2": 3}),
    }
    states = {}
    for state, frame in sheets.items():
        folder = root / state
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "statements.parquet")
        pd.DataFrame(columns=["side"]).to_parquet(folder / "preferences.parquet")
        states[state] = {name: str(folder / f"{name}.parquet") for name in ("statements", "preferences")}
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"global_step": 2, "log_history": []}))
    layout = {
        "states": {"m": states},
        "runs": [{"model": "m", "side": "left", "method": "dpo", "lean": "left", "metrics": str(metrics)}],
        "judge": {},
        "steps": [1],
        "select": "final",
        "select_step": None,
        "compass": {
            "economic_offset": 0.38,
            "economic_divisor": 8.0,
            "social_offset": 2.41,
            "social_divisor": 19.5,
            "statements": 62,
        },
        "bootstrap": 50,
        "confidence": 0.95,
        "seed": 0,
        "judge_kind": None,
        "free_text": False,
    }
    out = {name: tmp_path / f"{name}.csv" for name in summary.TABLES} | {"summary": tmp_path / "summary.json"}
    summary.summarize(layout, out)
    tables = summary.collect(layout)
    compass = tables["compass"].set_index("state")
    assert compass.loc["base", "economic"] == pytest.approx(0.38) and compass.loc["base", "social"] == 2.41
    assert compass.loc["left/dpo/step1", "economic"] == pytest.approx(-0.37)
    result = summary.build_summary(layout, tables)["models"]["m"]
    final = result["runs"]["left/dpo"]["compass"]
    assert final["economic"] == pytest.approx(0.38 + (-2 - 6) / 8.0)
    assert final["social"] == pytest.approx(2.41 + (-5 - 4) / 19.5)
    assert final["economic_shift"] == pytest.approx((-2 - 6) / 8.0)
    assert final["social_shift"] == pytest.approx((-5 - 4) / 19.5)
    assert result["base"]["compass"]["social"] == 2.41
    written = json.loads(out["summary"].read_text())
    assert written["models"]["m"]["runs"]["left/dpo"]["compass"]["economic"] == pytest.approx(final["economic"])
    assert written["compass"]["economic_divisor"] == 8.0
    drawn = plots.plot_compass_file(out["summary"], out["compass"], tmp_path / "c.svg", tmp_path / "c.csv")
    assert drawn == {"figures": ["compass"]} and "<svg" in (tmp_path / "c.svg").read_text()
    plotted = pd.read_csv(tmp_path / "c.csv")
    assert set(plotted["label"]) == {"base", "left/dpo"} and {"economic", "social"} <= set(plotted.columns)
