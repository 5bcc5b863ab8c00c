"""The one bridge between a Snakemake ``script:`` job and the package: every entry script
is ``run(snakemake, <stage>)``, where ``<stage>`` is the package's job function named like
the rule. The package never sees the job object.

``run`` builds the stage's job dataclass (the annotation of the function's ``job``
parameter) from ``params.job`` with the strict converter (an unknown or missing key fails
naming it), then calls the function with the rule's named inputs and outputs as keyword
arguments (the ``manifest`` output excepted: the job context writes it), plus ``threads``
where the function takes it, inside :func:`biasdrift.runtime.job` (rule log, seeding by
``job.seed`` where the job has one, manifest with what the function returns).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from biasdrift.config import config_from_dict
from biasdrift.runtime import job as job_context

RESERVED = ("manifest",)


def stage_job_class(fn: Callable) -> type:
    """The job dataclass of package job function ``fn`` (its ``job`` parameter's type)."""
    hints = typing.get_type_hints(fn)
    if "job" not in hints:
        raise TypeError(f"{fn.__module__}.{fn.__name__}: the first parameter must be `job: <dataclass>`")
    return hints["job"]


def named_files(files: Any) -> dict[str, Any]:
    """The named entries of a Snakemake input/output list: a path, or a list of paths."""
    out = {}
    for name, value in files.items():
        out[name] = value if isinstance(value, str) else [str(v) for v in value]
    return out


def run(smk: Any, fn: Callable[..., dict | None]) -> None:
    """Run stage ``fn`` as Snakemake job ``smk``."""
    if fn.__name__ != smk.rule:
        raise RuntimeError(f"rule {smk.rule} runs stage {fn.__name__}: a stage is named like its rule")
    cls = stage_job_class(fn)
    job = config_from_dict(cls, dict(smk.params.job), f"rule {smk.rule} params.job")
    inputs, outputs = named_files(smk.input), named_files(smk.output)
    shared = sorted(set(inputs) & set(outputs))
    if shared:
        raise RuntimeError(f"rule {smk.rule}: input and output both named {shared}")
    kwargs = {**inputs, **{k: v for k, v in outputs.items() if k not in RESERVED}}
    if "threads" in inspect.signature(fn).parameters:
        kwargs["threads"] = smk.threads
    runtime = getattr(job, "runtime", None)
    with job_context(
        smk.log[0] if len(smk.log) else None,
        outputs.get("manifest"),
        rule=smk.rule,
        params=dict(smk.params.items()),
        seed=getattr(job, "seed", None),
        deterministic=bool(getattr(runtime, "deterministic", False)),
        inputs=[str(p) for p in smk.input],
        outputs=[str(p) for p in smk.output],
        code_dir=smk.scriptdir,
    ) as record:
        record.update(fn(job, **kwargs) or {})
