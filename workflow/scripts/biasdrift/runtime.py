"""Runtime helpers every entry script uses: logging, seeding, device choice, atomic
writes, job manifests, progress bars and the Hugging Face token.

Heavy imports (torch, transformers) happen inside the functions that need them, so
this module can be imported at workflow parse time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger("biasdrift")

HF_TOKEN_ENV = "HF_TOKEN"
REDACTED = "<redacted>"

# Packages whose versions go into every manifest.
TRACKED_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "peft",
    "trl",
    "datasets",
    "numpy",
    "pandas",
    "snakemake",
    "traker",
    "kronfluence",
)


# --------------------------------------------------------------------------- secrets
def hf_token() -> str | None:
    """The Hugging Face token, read only from the ``HF_TOKEN`` environment variable.

    Never pass it on a command line, in a config file or in rule params: params are
    stored in Snakemake's metadata and in every job manifest.
    """
    token = os.environ.get(HF_TOKEN_ENV, "").strip()
    return token or None


def redact(text: str) -> str:
    """Replace the current HF token (if any) in ``text``."""
    token = hf_token()
    if token and token in text:
        text = text.replace(token, REDACTED)
    return text


class _RedactingFilter(logging.Filter):
    """Belt and braces: no log record may contain the HF token, whatever logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        token = hf_token()
        if token:
            message = record.getMessage()
            if token in message:
                record.msg = message.replace(token, REDACTED)
                record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text and token in record.exc_text:
                record.exc_text = record.exc_text.replace(token, REDACTED)
        return True


# --------------------------------------------------------------------------- logging
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(log_path: str | os.PathLike | None, level: int = logging.INFO) -> logging.Logger:
    """Send logging, warnings, transformers logging and uncaught tracebacks to the
    rule's log file and to stderr (the PyPSA ``configure_logging`` pattern)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="a", encoding="utf-8"))
    redactor = _RedactingFilter()
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(redactor)
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_default_handler()
        hf_logging.enable_propagation()
        hf_logging.set_verbosity_warning()

    def excepthook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        if getattr(exc, "_biasdrift_logged", False):  # job() logged it already
            return
        logging.getLogger("biasdrift").critical("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = excepthook
    return log


# --------------------------------------------------------------------------- seeding
@dataclass(frozen=True)
class Runtime:
    """``runtime`` of the config, the same for every rule (defaults in config/schema.yaml)."""

    device: str = field(metadata={"help": "auto = CUDA when present, else CPU; cpu / cuda force one."})
    deterministic: bool = field(metadata={"help": "torch.use_deterministic_algorithms(True) (slower)."})


def set_threads(threads: int) -> None:
    """Give torch the job's threads (Snakemake's ``threads``): the one place that sets
    torch's intra-op thread count. Models this small gain nothing from more threads than
    the job has, and oversubscribed threads are very slow."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (CUDA included): the generators transformers'
    ``set_seed`` seeds on CPU and CUDA, without importing the Trainer stack (about 3 s of
    start-up in a job that trains nothing)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


# --------------------------------------------------------------------------- devices
def choose_device(prefer: str = "auto"):
    """``auto``: CUDA when present, else CPU. ``cpu`` / ``cuda`` force one."""
    import torch

    if prefer not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"device must be auto, cpu or cuda, got {prefer!r}")
    if prefer == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but no CUDA device is available")
    if prefer == "auto":
        prefer = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(prefer)


def choose_dtype(device, prefer: str = "auto"):
    """``auto``: bfloat16 on a CUDA device that supports it, float32 otherwise."""
    import torch

    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "fp64": torch.float64}
    if prefer == "auto":
        if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if prefer not in table:
        raise ValueError(f"dtype must be one of auto, {', '.join(table)}; got {prefer!r}")
    return table[prefer]


# --------------------------------------------------------------------------- atomic I/O
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it into place.

    Works for files and directories; the temporary path keeps the final name (and so
    its extension) inside a private temporary directory. On failure the temporary path is removed, so no
    half-written output is left behind.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    target = tmp / final.name
    try:
        yield target
        if not target.exists():
            raise FileNotFoundError(f"nothing was written to the temporary path for {final}")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(target, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _json_default(obj: Any) -> Any:
    if is_dataclass(obj):
        return asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=True) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(obj), encoding="utf-8")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def config_hash(obj: Any) -> str:
    """A stable short hash of a JSON-serialisable object (dataclasses included)."""
    text = json.dumps(obj, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- manifests
def package_versions(packages: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_sha(directory: str | os.PathLike | None) -> str | None:
    """Commit of the checkout containing ``directory`` (with ``-dirty`` when modified)."""
    if directory is None:
        return None
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def write_manifest(
    path: str | os.PathLike,
    *,
    rule: str,
    params: dict[str, Any],
    seed: int | None = None,
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    code_dir: str | os.PathLike | None = None,
    started: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` for one job: what ran, with which seed, params, code and
    package versions. The HF token never appears (it is not a param, and any string
    equal to it is redacted)."""
    manifest = {
        "rule": rule,
        "seed": seed,
        "params": params,
        "inputs": sorted(str(p) for p in inputs),
        "outputs": sorted(str(p) for p in outputs),
        "git_sha": git_sha(code_dir),
        "packages": package_versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": None if started is None else round(time.time() - started, 3),
        "hf_revisions": _collect_revisions(params),
        "execution": execution_context(),
    }
    if extra:
        manifest.update(extra)
    with atomic_path(path) as tmp:
        tmp.write_text(redact(dumps_json(manifest)), encoding="utf-8")
    return manifest


def execution_context() -> dict[str, str | None]:
    """Where a job ran: the host, its Slurm job (if any) and the GPUs it was given."""
    return {
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def _collect_revisions(obj: Any, prefix: str = "") -> dict[str, str]:
    """Every ``hf_id`` found in params, with its pinned ``revision`` (or "unpinned")."""
    found: dict[str, str] = {}
    if isinstance(obj, dict):
        if isinstance(obj.get("hf_id"), str):
            found[obj["hf_id"]] = obj.get("revision") or "unpinned"
        for key, value in obj.items():
            found.update(_collect_revisions(value, f"{prefix}{key}."))
    elif isinstance(obj, list | tuple):
        for value in obj:
            found.update(_collect_revisions(value, prefix))
    return found


# --------------------------------------------------------------------------- jobs
@contextlib.contextmanager
def job(
    log_path: str | os.PathLike | None,
    manifest_path: str | os.PathLike | None,
    *,
    rule: str,
    params: dict[str, Any],
    seed: int | None = None,
    deterministic: bool = False,
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    code_dir: str | os.PathLike | None = None,
) -> Iterator[dict[str, Any]]:
    """What every entry script does around its one call: log to the rule log, seed,
    time the job, and on success write ``manifest.json`` with whatever the body put
    into the yielded dict. On failure the exception propagates (and is logged)."""
    setup_logging(log_path)
    log.info("rule %s starting (%s)", rule, ", ".join(f"{k} {v}" for k, v in execution_context().items() if v))
    if seed is not None:
        seed_everything(seed, deterministic=deterministic)
    started = time.time()
    extra: dict[str, Any] = {}
    try:
        yield extra
    except BaseException as exc:
        log.exception("rule %s failed", rule)
        with contextlib.suppress(AttributeError, TypeError):
            exc._biasdrift_logged = True  # type: ignore[attr-defined]
        raise
    if manifest_path:
        write_manifest(
            manifest_path,
            rule=rule,
            params=params,
            seed=seed,
            inputs=inputs,
            outputs=outputs,
            code_dir=code_dir,
            started=started,
            extra={"results": extra} if extra else None,
        )
    log.info("rule %s done in %.1fs", rule, time.time() - started)


# --------------------------------------------------------------------------- progress
def progress(iterable: Iterable | None = None, **kwargs: Any):
    """A tqdm bar that is live on a terminal and silent in non-TTY rule logs."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", None)
    kwargs.setdefault("mininterval", 30 if not sys.stderr.isatty() else 0.5)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
