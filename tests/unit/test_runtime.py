"""Runtime helpers: atomic writes, logging (tracebacks, redaction), manifests, seeding."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from biasdrift import runtime

TOKEN = "hf_TESTtokenTESTtokenTESTtoken1234"


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch):
    """setup_logging replaces the root handlers and sys.excepthook: undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_atomic_path_writes_files_and_directories(tmp_path):
    target = tmp_path / "out" / "a.json"
    with runtime.atomic_path(target) as tmp:
        assert tmp.name == "a.json" and tmp.parent != target.parent
        tmp.write_text("{}")
        assert not target.exists()
    assert target.read_text() == "{}"
    folder = tmp_path / "model"
    with runtime.atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "w.bin").write_bytes(b"1")
    assert (folder / "w.bin").read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "b.json"
    with pytest.raises(RuntimeError), runtime.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_requires_a_write(tmp_path):
    with pytest.raises(FileNotFoundError), runtime.atomic_path(tmp_path / "c.json"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_json_roundtrip_handles_numpy_and_paths(tmp_path):
    import numpy as np

    runtime.write_json(tmp_path / "x.json", {"a": np.float32(1.5), "b": Path("p"), "c": np.arange(3)})
    assert runtime.read_json(tmp_path / "x.json") == {"a": 1.5, "b": "p", "c": [0, 1, 2]}


def test_uncaught_tracebacks_reach_the_rule_log(tmp_path, repo):
    log = tmp_path / "rule.log"
    script = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(repo / "workflow" / "scripts")!r})
        from biasdrift.runtime import setup_logging
        import logging, warnings
        setup_logging({str(log)!r})
        logging.getLogger("x").info("hello")
        warnings.warn("careful")
        raise ValueError("the culprit")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1
    text = log.read_text()
    assert "hello" in text and "careful" in text
    assert "Traceback" in text and "ValueError: the culprit" in text


def test_token_is_redacted_from_logs_and_tracebacks(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    log = tmp_path / "rule.log"
    runtime.setup_logging(log)
    logger = logging.getLogger("biasdrift.test")
    logger.info("token is %s", TOKEN)
    try:
        raise OSError(f"401 for url with token={TOKEN}")
    except OSError:
        logger.exception("download failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log.read_text()
    assert TOKEN not in text
    assert text.count(runtime.REDACTED) == 2


def test_hf_token_only_from_environment(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert runtime.hf_token() is None
    monkeypatch.setenv("HF_TOKEN", f"  {TOKEN}\n")
    assert runtime.hf_token() == TOKEN


def test_manifest_records_what_ran(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    params = {"model": {"hf_id": "org/m", "revision": "abc"}, "note": f"echo {TOKEN}"}
    manifest = runtime.write_manifest(
        tmp_path / "manifest.json", rule="r", params=params, seed=3, inputs=["b", "a"], outputs=["o"]
    )
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["seed"] == 3 and on_disk["rule"] == "r" and on_disk["inputs"] == ["a", "b"]
    assert on_disk["hf_revisions"] == {"org/m": "abc"}
    assert on_disk["packages"]["torch"] == torch.__version__
    assert TOKEN not in (tmp_path / "manifest.json").read_text()
    assert manifest["params"]["model"]["revision"] == "abc"
    assert on_disk["execution"]["slurm_job_id"] == "42" and on_disk["execution"]["cuda_visible_devices"] == "0"


def test_job_writes_the_manifest_only_on_success(tmp_path):
    ok = tmp_path / "ok.json"
    with runtime.job(tmp_path / "ok.log", ok, rule="r", params={"a": 1}, seed=0) as record:
        record["rows"] = 5
    assert json.loads(ok.read_text())["results"] == {"rows": 5}
    bad = tmp_path / "bad.json"
    with pytest.raises(KeyError), runtime.job(tmp_path / "bad.log", bad, rule="r", params={}):
        raise KeyError("x")
    assert not bad.exists()
    assert "rule r failed" in (tmp_path / "bad.log").read_text()


def test_git_sha_of_a_checkout(tmp_path, repo):
    assert runtime.git_sha(tmp_path) is None
    sha = runtime.git_sha(repo)
    if (repo / ".git").exists() and sha is not None:
        assert len(sha.split("-")[0]) == 40


def test_device_and_dtype_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.choose_device("auto").type == "cpu"
    assert runtime.choose_dtype(torch.device("cpu")) is torch.float32
    with pytest.raises(RuntimeError, match="no CUDA device"):
        runtime.choose_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        runtime.choose_device("tpu")


def test_seed_everything_is_reproducible():
    import random

    import numpy as np

    runtime.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    runtime.seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


def test_progress_is_silent_without_a_terminal(capsys):
    assert list(runtime.progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_a_failing_job_logs_its_traceback_once(tmp_path, repo):
    log = tmp_path / "rule.log"
    script = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {str(repo / "workflow" / "scripts")!r})
        from biasdrift.runtime import job
        with job({str(log)!r}, None, rule="r", params={{}}):
            raise ValueError("the culprit")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1
    assert log.read_text().count("ValueError: the culprit") == 1
