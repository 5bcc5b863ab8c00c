"""The workflow on a real Slurm cluster, and the faults a cluster brings.

tests/slurm/start.sh starts a one-node Slurm on this machine (munge, slurmdbd with
MariaDB, slurmctld, slurmd; partitions "cpu" and "gpu" and fake GPUs that mirror the
placeholders of profiles/slurm). The workflow goes to it through
``snakemake --profile profiles/slurm --profile profiles/slurm-local``, and the tests check:

* its outputs equal those of a local run; GPU rules ran in the gpu partition with a GPU
  (CUDA_VISIBLE_DEVICES reached the job), CPU rules without one;
* a training job cancelled mid-run (scancel) is reported and keeps no output, and the
  next invocation resumes it from its checkpoint to the weights of an uninterrupted run;
* a job over its time limit is reported (TIMEOUT), keeps no output, and
  --rerun-incomplete recovers it;
* a local run killed with SIGKILL reruns only its incomplete jobs (no cluster needed).

The cluster tests need root and apt-get (Debian 12); elsewhere they are skipped with
the reason. Deselect them with ``-m "not slurm"``. This session stops the cluster at
its end if it started it. Every snakemake run on the cluster is wrapped in
``timeout -s INT -k 30``: the executor ignores SIGTERM while it polls.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

from biasdrift.tinystories import workflow as tinystories_workflow
from biasdrift.training import latest_checkpoint
from tests.conftest import SNAKEMAKE, TINY, clean_env, copy_workflow, snakemake
from tests.test_workflow import planned_jobs

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

REPO = Path(__file__).resolve().parents[1]
START, STOP = REPO / "tests/slurm/start.sh", REPO / "tests/slurm/stop.sh"


# ======================================================================================
# WHAT THE SLURM TESTS RUN. The local reference is the session fixture tiny_run
# (tests/config/tiny.yaml, every study's CI entries), shared with the other workflow
# tests, so comparing with it costs nothing extra. On the cluster: the smallest complete
# study, tinystories (corpus, vocabulary, pretraining, deletion, recovery, evaluation,
# probes, summary and plots: 17 of its jobs go to Slurm, 10 of them GPU jobs), plus the
# foundation's tiny-gpt2, the training job the faults interrupt (200 steps, a checkpoint
# every 20: slow enough to be caught mid-run, unlike tinystories' 6-20-step runs).
CONFIG = TINY  # snakemake arguments selecting the config
STUDY_TARGETS = tuple(tinystories_workflow.targets(yaml.safe_load((REPO / TINY[1]).read_text())))


@dataclass(frozen=True)
class TrainingJob:
    """One job of a training rule that keeps checkpoints (biasdrift.training.fit)."""

    rule: str
    wildcards: dict[str, str]
    output: str  # the declared output directory with the weights (model.safetensors)
    metrics: str  # the train_metrics.json written by fit()
    scratch: str  # its undeclared checkpoint folder

    @property
    def comment(self) -> str:
        """The --comment the Slurm executor gives the job."""
        return f"rule_{self.rule}_wildcards_{'_'.join(self.wildcards.values())}"

    @property
    def planned(self) -> tuple[str, str]:
        """How a dry-run lists it (see planned_jobs)."""
        return self.rule, ", ".join(f"{k}={v}" for k, v in self.wildcards.items())


def pretrain(model: str) -> TrainingJob:
    base = f"results/models/{model}"
    return TrainingJob("pretrain_lm", {"model": model}, f"{base}/model", f"{base}/train_metrics.json",
                       f"{base}/.scratch/pretrain_lm")  # fmt: skip


TRAINING_JOBS = tuple(pretrain(m) for m in ("tiny-gpt2", "tiny-llama", "tiny-bert"))
INTERRUPTED = TRAINING_JOBS[0]  # cancelled in the Slurm run; over its time limit in another
TARGETS = (*STUDY_TARGETS, INTERRUPTED.output)  # what the Slurm run builds
LOCAL_TARGETS = tuple(job.output for job in TRAINING_JOBS)  # what the SIGKILLed local run builds
# JSON keys that differ between two correct runs: timings, where a resume started, and
# the Trainer's train_loss, which after a resume averages only that attempt's steps
VOLATILE_KEYS = frozenset(
    {
        "finished_at",
        "wall_seconds",
        "wall_seconds_this_attempt",
        "resumed_from_step",
        "steps_this_attempt",
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "eval_runtime",
        "eval_samples_per_second",
        "eval_steps_per_second",
        "train_loss",
    }
)
# never compared: manifests (hosts, job ids, times) and SVGs (random element ids); the
# numbers behind every figure are in the CSV beside it, which is compared
UNCOMPARED_SUFFIXES = ("manifest.json", ".svg", ".html")
# ======================================================================================

SLURM_PROFILES = ("--profile", "profiles/slurm", "--profile", "profiles/slurm-local")
GPU_TYPE = "fake"  # GRES type of start.sh's fake GPUs (SLURM_LOCAL_GPU_TYPE); asked for as gpu_model
LIMIT = 900  # seconds for one snakemake run on the cluster (the machine may be busy)
LOCK = Path("/tmp/biasdrift-slurm-tests.lock")  # one test session on the per-machine cluster at a time


# --------------------------------------------------------------------------- helpers
def slurm_env() -> dict[str, str]:
    """The environment of a run on the cluster: offline, asking for the fake GPU type,
    without GPUs or Slurm variables of the submitting shell (--export=ALL passes it on)."""
    env = clean_env(BIASDRIFT_GPU_MODEL=GPU_TYPE)
    return {k: v for k, v in env.items() if k != "CUDA_VISIBLE_DEVICES" and not k.startswith("SLURM_")}


def slurm_command(*args: str, limit: int = LIMIT) -> list[str]:
    return ["timeout", "-s", "INT", "-k", "30", str(limit), *SNAKEMAKE, *SLURM_PROFILES, *args]


def run_on_slurm(work: Path, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(slurm_command(*args), cwd=work, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake on slurm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def cluster_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the Slurm tests need root (tests/slurm/start.sh installs Debian packages and runs slurmd)"
    if not (shutil.which("apt-get") and shutil.which("dpkg-query")):
        return "the Slurm tests need apt-get (Debian 12) to install Slurm"
    return None


def local_cluster_runs() -> bool:
    """Whether tests/slurm/start.sh has a live slurmctld (ours or a developer's)."""
    proc = subprocess.run(["bash", "-c", f"source {REPO}/tests/slurm/lib.sh; running slurmctld"], capture_output=True)
    return proc.returncode == 0


def squeue_job(work: Path, job: TrainingJob) -> str | None:
    """The Slurm id of ``job`` submitted from ``work``, while it is queued or running."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%k|%Z"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        jobid, comment, workdir = line.split("|", 2)
        if comment == job.comment and Path(workdir) == work:
            return jobid
    return None


def sacct_jobs(work: Path, since: str = "now-2days") -> list[dict[str, str]]:
    """Accounting records of every Slurm job submitted from ``work`` since ``since`` (a
    sacct time: an earlier session's jobs from a folder of the same name are not these)."""
    fields = ["JobID", "State", "Partition", "AllocTRES", "Comment", "WorkDir"]
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-a", "--starttime", since, f"--format={','.join(fields)}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines() if line]
    return [r for r in rows if Path(r["WorkDir"]) == work]


def job_processes(jobid: str) -> set[int]:
    """The processes of a Slurm job (scontrol listpids) and their descendants."""
    out = subprocess.run(["scontrol", "listpids", jobid], capture_output=True, text=True).stdout
    pids = {int(line.split()[0]) for line in out.splitlines()[1:] if line.split() and line.split()[0].isdigit()}
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    grew = True
    while grew:
        children = {pid for pid, ppid in parent.items() if ppid in pids} - pids
        pids |= children
        grew = bool(children)
    return pids


def freeze(jobid: str) -> None:
    """SIGSTOP every process of a Slurm job: training stops where it is, while Slurm
    still counts the job as running (and can cancel it or time it out)."""
    pids = job_processes(jobid)
    assert pids, f"no processes found for Slurm job {jobid}"
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)


def wait_for_checkpoint(work: Path, job: TrainingJob, proc: subprocess.Popen, timeout: float = LIMIT) -> str:
    """Wait until ``job`` runs on the cluster and has written a complete checkpoint,
    and return its Slurm id (fails if the run ends or the training finishes first)."""
    deadline = time.time() + timeout
    jobid = None
    while time.time() < deadline:
        assert proc.poll() is None, f"snakemake ended ({proc.returncode}) before {job.comment} had a checkpoint"
        jobid = jobid or squeue_job(work, job)
        if jobid and latest_checkpoint(work / job.scratch) is not None:
            assert not (work / job.metrics).exists(), f"{job.comment} finished before it could be interrupted"
            return jobid
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of {job.comment} within {timeout}s")


def strip_volatile(value):
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


def difference(a: Path, b: Path) -> str | None:
    """How file ``a`` differs from ``b`` (None if equal): tensors bit for bit, JSON and
    pickled TrainingArguments without VOLATILE_KEYS, parquet tables by value, CSV tables
    by bytes or else by value without VOLATILE_KEYS columns, the rest by bytes."""
    if a.suffix == ".safetensors":
        ta, tb = load_file(a), load_file(b)
        unequal = sorted(k for k in ta.keys() & tb.keys() if not torch.equal(ta[k], tb[k]))
        return None if ta.keys() == tb.keys() and not unequal else f"tensors {unequal or 'names'} differ"
    if a.suffix == ".json" or a.name == "training_args.bin":
        if a.suffix == ".json":
            da, db = (strip_volatile(json.loads(p.read_text())) for p in (a, b))
        else:  # training_args.bin: the pickled TrainingArguments of a model
            da, db = (strip_volatile(torch.load(p, weights_only=False).to_dict()) for p in (a, b))
        if da == db:
            return None
        if isinstance(da, dict) and isinstance(db, dict):
            return f"keys {sorted(k for k in da.keys() | db.keys() if da.get(k) != db.get(k))} differ"
        return "content differs"
    if a.suffix == ".parquet":  # by value (pyarrow: pandas' equals fails on nested list columns)
        import pyarrow.parquet as pq

        same = a.read_bytes() == b.read_bytes() or pq.read_table(a).equals(pq.read_table(b))
        return None if same else "table differs"
    if a.suffix == ".csv" and a.read_bytes() != b.read_bytes():  # a table of trainer logs holds timings
        ta, tb = (pd.read_csv(p).drop(columns=list(VOLATILE_KEYS), errors="ignore") for p in (a, b))
        return None if ta.equals(tb) else "table differs"
    return None if a.read_bytes() == b.read_bytes() else "bytes differ"


def compare_results(work: Path, reference: Path) -> tuple[list[str], list[str]]:
    """Every result file of ``work`` against its twin in ``reference``: (compared, differences)."""
    compared, differences = [], []
    for path in sorted((work / "results").rglob("*")):
        rel = path.relative_to(work)
        if not path.is_file() or ".scratch" in rel.parts or path.name.endswith(UNCOMPARED_SUFFIXES):
            continue
        compared.append(str(rel))
        twin = reference / rel
        if not twin.is_file():
            differences.append(f"{rel}: not in the local run")
        elif problem := difference(path, twin):
            differences.append(f"{rel}: {problem} (local run: {twin})")
    return compared, differences


def metrics_of(work: Path, job: TrainingJob) -> dict:
    return json.loads((work / job.metrics).read_text())


def assert_resumed_to_reference_weights(work: Path, reference: Path, job: TrainingJob) -> dict:
    metrics = metrics_of(work, job)
    assert 0 < metrics["resumed_from_step"] < metrics["global_step"], metrics["resumed_from_step"]
    assert metrics["steps_this_attempt"] == metrics["global_step"] - metrics["resumed_from_step"]
    weights = f"{job.output}/model.safetensors"
    problem = difference(work / weights, reference / weights)
    assert problem is None, f"{weights}: the resumed weights differ from the uninterrupted local run: {problem}"
    return metrics


def gpu_rules() -> set[str]:
    """Rules the workflow profile gives GPUs."""
    raw = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    return {rule for rule, res in raw["set-resources"].items() if res.get("gpu", 0)}


# --------------------------------------------------------------------------- profiles (no cluster)
def dry_run_resources(work: Path, env: dict[str, str]) -> dict[str, dict[str, str]]:
    """rule -> the resources a dry run with the Slurm profiles lists for it."""
    proc = snakemake(work, "-n", *SLURM_PROFILES, *CONFIG, env=env)
    out, rule = {}, None
    for line in proc.stdout.splitlines():
        match = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if match:
            rule = match.group(1)
        elif rule and line.strip().startswith("resources:"):
            pairs = (item.split("=", 1) for item in line.split(":", 1)[1].split(", "))
            out[rule] = {k.strip(): v.strip() for k, v in pairs}
    return out


def test_workflow_profile_gives_gpus_to_gpu_rules_only():
    raw = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert INTERRUPTED.rule in gpu_rules()
    for rule, res in raw["set-resources"].items():
        assert res.get("mem_mb") and res.get("runtime"), f"{rule}: mem_mb and runtime are needed on a cluster"
        if rule in gpu_rules():
            assert res.get("gpu_model") == "?GPU_MODEL", f"{rule}: a GPU rule takes its gpu_model from the environment"
        else:
            assert not {"gpu_model", "gres", "gpus"} & set(res), f"{rule}: a CPU rule asks for no GPU"
    assert "cpus_per_task" not in yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())["default-resources"]


def test_every_rule_has_threads_and_resources_in_the_workflow_profile(tmp_path):
    """A study's new rule without an entry would run on a cluster with the cluster
    profile's defaults (no GPU, 4 GB, 1 hour)."""
    rules = set(snakemake(copy_workflow(tmp_path / "w"), "--list-rules", *CONFIG).stdout.split()) - {"all"}
    raw = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert len(rules) > 10, rules
    for key in ("set-resources", "set-threads"):
        assert not rules - set(raw[key]), f"rules without {key}: {sorted(rules - set(raw[key]))}"


@pytest.mark.parametrize("gpu_model", ["", "a100"])
def test_gpu_model_comes_from_the_environment(tmp_path, gpu_model):
    work = copy_workflow(tmp_path / "w")
    resources = dry_run_resources(work, clean_env(BIASDRIFT_GPU_MODEL=gpu_model))
    for rule, res in resources.items():
        if rule in gpu_rules():
            assert res["gpu"] == "1" and res.get("gpu_model") == (gpu_model or None), (rule, res)
        else:
            assert "gpu" not in res and "gpu_model" not in res, (rule, res)
    assert int(resources[INTERRUPTED.rule]["mem_mb"]) > 4000, "per-rule resources of the workflow profile apply"


def test_start_refuses_to_run_without_root():
    command = ["bash", str(START)]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "must run as root" in proc.stderr


# --------------------------------------------------------------------------- the cluster
@pytest.fixture(scope="module")
def cluster_lock():
    """One test session at a time on the per-machine cluster."""
    if reason := cluster_unavailable():
        pytest.skip(reason)
    with LOCK.open("w") as handle:
        deadline = time.time() + 1800
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.time() < deadline, f"another test session has held {LOCK} for 30 minutes"
                time.sleep(2)
        yield
        fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.mark.usefixtures("cluster_lock")
def test_start_fails_clearly_when_a_port_is_taken():
    if local_cluster_runs():
        pytest.skip("the local cluster is already running (its ports are its own)")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", 6817))
        sock.listen()
        proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=900)
    assert proc.returncode != 0
    assert "TCP port 6817 (for slurmctld) is already taken by another process" in proc.stderr
    assert "starting" not in proc.stderr, "nothing may start"


@dataclass
class TimeLimitRun:
    """The training job INTERRUPTED alone, with the smallest time limit Slurm has
    (1 minute), in the background: after its first checkpoint its processes are frozen
    (SIGSTOP), a training run too slow for its limit, until Slurm ends it (TIMEOUT)."""

    work: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    jobid: str | None = None
    error: BaseException | None = None
    watcher: threading.Thread | None = None
    profile: str = field(default="")

    def start(self) -> None:
        wp = self.work / "profiles/default/config.yaml"
        self.profile = wp.read_text()
        raw = yaml.safe_load(self.profile)
        raw["set-resources"][INTERRUPTED.rule]["runtime"] = 1
        wp.write_text(yaml.safe_dump(raw, sort_keys=False))
        with (self.work / "time_limit.log").open("w") as log:
            self.proc = subprocess.Popen(
                slurm_command("--retries", "0", *CONFIG, INTERRUPTED.output),
                cwd=self.work,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.watcher = threading.Thread(target=self._freeze_after_checkpoint, daemon=True)
        self.watcher.start()

    def _freeze_after_checkpoint(self) -> None:
        try:
            self.jobid = wait_for_checkpoint(self.work, INTERRUPTED, self.proc)
            freeze(self.jobid)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def wait(self) -> tuple[int, str]:
        returncode = self.proc.wait(timeout=LIMIT + 60)
        self.watcher.join(timeout=60)
        return returncode, (self.work / "time_limit.log").read_text()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
            if self.proc.poll() is None:
                self.proc.kill()


BACKGROUND: dict[str, TimeLimitRun] = {}
TIME_LIMIT_TEST = "test_a_job_over_its_time_limit_is_reported_and_recovered"


@pytest.fixture(scope="module")
def cluster(request, cluster_lock, tmp_path_factory):  # noqa: ARG001 - held for the module
    """The local cluster, started for this module and, when this session started it,
    stopped at the end of the session: once Slurm's client tools are installed, the
    Slurm executor plugin runs `scontrol show config` whenever snakemake starts, which
    waits 10 s for a controller that is gone (every later test would pay it). When the
    time-limit test is selected its run starts here, in the background, so that the
    minute Slurm needs to time a job out overlaps the other tests."""
    started_here = not local_cluster_runs()
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=900)
    try:
        assert proc.returncode == 0, f"tests/slurm/start.sh failed:\n{proc.stderr}"
        if any(
            item.name == "test_a_job_over_its_time_limit_is_reported_and_recovered" for item in request.session.items
        ):
            BACKGROUND["time_limit"] = TimeLimitRun(copy_workflow(tmp_path_factory.mktemp("time-limit")), slurm_env())
            BACKGROUND["time_limit"].start()
        yield proc.stderr
    finally:
        for run in BACKGROUND.values():
            run.stop()
        if started_here:
            request.config.add_cleanup(lambda: subprocess.run(["bash", str(STOP)], capture_output=True, timeout=300))


def test_start_is_idempotent(cluster):
    assert "ready" in cluster
    again = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "starting" not in again.stderr and "wrote" not in again.stderr
    nodes = subprocess.run(["sinfo", "-h", "-o", "%P %T %G"], capture_output=True, text=True).stdout.split("\n")
    assert {line.split()[0].rstrip("*") for line in nodes if line} == {"cpu", "gpu"}
    assert all(f"gpu:{GPU_TYPE}:" in line for line in nodes if line)


# --------------------------------------------------------------------------- a killed local run
def incomplete_outputs(work: Path) -> set[str]:
    """Outputs of the jobs Snakemake has started but not recorded as finished (its
    incomplete markers: .snakemake/incomplete/<urlsafe base64 of the output path>)."""
    out = set()
    for marker in (work / ".snakemake" / "incomplete").glob("*"):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            out.add(base64.urlsafe_b64decode(marker.name.encode()).decode())
    return out


def test_a_killed_local_run_reruns_only_its_incomplete_jobs(tiny_run, tmp_path):
    """SIGKILL the whole local run (snakemake and its jobs) once one training job has
    finished and the next is mid-run; the next run reruns that one (resuming it) and
    what never ran, and leaves every finished output alone. A deliberately broken resume
    (checkpoints without optimizer state) fails the weight check."""
    reference, _ = tiny_run
    work = copy_workflow(tmp_path / "killed")
    env = clean_env()
    proc = subprocess.Popen(
        [*SNAKEMAKE, *CONFIG, "--cores", "2", *LOCAL_TARGETS],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline, done, running = time.time() + LIMIT, [], []
    while time.time() < deadline and proc.poll() is None:
        # done = recorded as finished by Snakemake, not only written: with two training jobs
        # side by side one can finish while the other runs, and a kill in between leaves the
        # first incomplete (rightly rerun)
        unfinished = incomplete_outputs(work)
        done = [j for j in TRAINING_JOBS if (work / j.metrics).exists() and not {j.output, j.metrics} & unfinished]
        running = [j for j in TRAINING_JOBS if j not in done and latest_checkpoint(work / j.scratch) is not None]
        if done and running:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before a training job was caught mid-run"
    finished = {
        p: p.stat().st_mtime_ns for p in (work / "results").rglob("*") if p.is_file() and ".scratch" not in p.parts
    }

    snakemake(work, "--unlock", *CONFIG, env=env)
    plan = planned_jobs(snakemake(work, "-n", "--cores", "2", *CONFIG, *LOCAL_TARGETS, env=env).stdout)
    planned_rules = {rule for rule, _ in plan}
    assert all(job.planned in plan for job in running), plan
    assert not any(job.planned in plan for job in done), plan
    assert not {"prepare_dataset", "train_tokenizer"} & planned_rules, plan

    # the same resume, deliberately broken (the optimizer state is not restored): the
    # weight check must catch it
    broken = tmp_path / "broken"
    shutil.copytree(work, broken, symlinks=True)
    for optimizer_state in (broken / running[0].scratch).glob("checkpoint-*/optimizer.pt"):
        optimizer_state.unlink()
    snakemake(broken, *CONFIG, "--cores", "2", running[0].output, env=env)
    with pytest.raises(AssertionError, match="resumed weights differ"):
        assert_resumed_to_reference_weights(broken, reference, running[0])

    snakemake(work, *CONFIG, "--cores", "2", *LOCAL_TARGETS, env=env)
    for job in running:
        assert_resumed_to_reference_weights(work, reference, job)
    touched = [str(p.relative_to(work)) for p, mtime in finished.items() if p.stat().st_mtime_ns != mtime]
    assert not touched, f"outputs of finished jobs were rewritten: {touched}"


# --------------------------------------------------------------------------- the workflow on the cluster
@dataclass
class SlurmRun:
    work: Path
    cancelled: str  # Slurm id of the cancelled training job
    first: tuple[int, str]  # returncode and output of the run during which it was cancelled
    after_cancel: dict[str, bool]
    second: subprocess.CompletedProcess
    since: str  # when the first run started (sacct --starttime)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory) -> SlurmRun:  # noqa: ARG001 - needs it running
    """The config on the cluster. Once INTERRUPTED has a checkpoint it is cancelled
    with scancel (its processes frozen first, so a fast training run cannot finish in
    between); the run goes on with the other jobs (--keep-going, no retries) and fails.
    The next invocation, plain, completes the workflow."""
    work = copy_workflow(tmp_path_factory.mktemp("slurm"))
    env = slurm_env()
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    with (work / "first.log").open("w") as log:
        first = subprocess.Popen(
            slurm_command("--retries", "0", "--keep-going", *CONFIG, *TARGETS),
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        jobid = wait_for_checkpoint(work, INTERRUPTED, first)
        freeze(jobid)
        subprocess.run(["scancel", jobid], check=True)
        returncode = first.wait(timeout=LIMIT + 60)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGINT)
            first.wait(timeout=60)
    after_cancel = {
        "output": (work / INTERRUPTED.output).exists(),
        "metrics": (work / INTERRUPTED.metrics).exists(),
        "checkpoint": latest_checkpoint(work / INTERRUPTED.scratch) is not None,
    }
    second = run_on_slurm(work, *CONFIG, *TARGETS, env=env, check=False)
    return SlurmRun(work, jobid, (returncode, (work / "first.log").read_text()), after_cancel, second, since)


def test_a_cancelled_training_job_is_reported_and_keeps_no_output(slurm_run):
    returncode, output = slurm_run.first
    assert returncode == 1, output
    assert f"SLURM-job '{slurm_run.cancelled}' failed, SLURM status is: 'CANCELLED'" in output
    assert f"Error in rule {INTERRUPTED.rule}" in output
    assert slurm_run.after_cancel == {"output": False, "metrics": False, "checkpoint": True}
    states = {r["JobID"]: r["State"] for r in sacct_jobs(slurm_run.work, slurm_run.since)}
    assert states[slurm_run.cancelled].startswith("CANCELLED")
    others = [state for jobid, state in states.items() if jobid != slurm_run.cancelled]
    assert others and all(state == "COMPLETED" for state in others), states


def test_the_next_invocation_resumes_the_cancelled_job(slurm_run, tiny_run):
    second = slurm_run.second
    assert second.returncode == 0, second.stdout + second.stderr
    ran = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", second.stdout + second.stderr)
    assert ran.count(INTERRUPTED.rule) == 1, ran
    assert_resumed_to_reference_weights(slurm_run.work, tiny_run[0], INTERRUPTED)


def test_slurm_outputs_equal_a_local_run(slurm_run, tiny_run):
    assert slurm_run.second.returncode == 0
    compared, differences = compare_results(slurm_run.work, tiny_run[0])
    assert not differences, differences
    assert any(p.endswith(".safetensors") for p in compared) and len(compared) > 10, compared


def test_gpu_rules_ran_with_a_gpu_and_cpu_rules_without(slurm_run):
    jobs = sacct_jobs(slurm_run.work, slurm_run.since)
    checked = {"gpu": 0, "cpu": 0}
    for job in jobs:
        rule = job["Comment"].removeprefix("rule_").split("_wildcards_")[0]
        if rule in gpu_rules():
            assert job["Partition"] == "gpu" and f"gres/gpu:{GPU_TYPE}=1" in job["AllocTRES"], job
            checked["gpu"] += 1
        else:
            assert job["Partition"] == "cpu" and "gres/gpu" not in job["AllocTRES"], job
            checked["cpu"] += 1
    assert checked["gpu"] and checked["cpu"], checked
    seen = {"gpu": 0, "cpu": 0, "local": 0}
    for path in (slurm_run.work / "results").rglob("*manifest.json"):
        manifest = json.loads(path.read_text())
        if "rule" not in manifest:
            continue  # a data manifest (tinystories' corpus/manifest.json: feature counts), not a job's
        execution = manifest["execution"]
        if execution["slurm_job_id"] is None:
            seen["local"] += 1  # a local rule, run by snakemake on the submit node
        elif manifest["rule"] in gpu_rules():
            assert re.fullmatch(r"\d+(,\d+)*", execution["cuda_visible_devices"] or ""), (path, execution)
            seen["gpu"] += 1
        else:
            assert not execution["cuda_visible_devices"], (path, execution)
            seen["cpu"] += 1
    assert all(seen.values()), seen


# --------------------------------------------------------------------------- a job over its time limit
@pytest.fixture(scope="module")
def time_limit_run(cluster) -> TimeLimitRun:  # noqa: ARG001 - started it
    return BACKGROUND["time_limit"]


def test_a_job_over_its_time_limit_is_reported_and_recovered(time_limit_run, tiny_run):
    run = time_limit_run
    returncode, output = run.wait()
    assert run.error is None, run.error
    assert returncode == 1, output
    assert f"SLURM-job '{run.jobid}' failed, SLURM status is: 'TIMEOUT'" in output
    assert f"Error in rule {INTERRUPTED.rule}" in output
    assert not (run.work / INTERRUPTED.output).exists() and not (run.work / INTERRUPTED.metrics).exists()
    assert latest_checkpoint(run.work / INTERRUPTED.scratch) is not None

    # the researcher raises the limit (here: back to the profile's) and reruns
    (run.work / "profiles/default/config.yaml").write_text(run.profile)
    run_on_slurm(run.work, "--rerun-incomplete", *CONFIG, INTERRUPTED.output, env=run.env)
    assert_resumed_to_reference_weights(run.work, tiny_run[0], INTERRUPTED)
