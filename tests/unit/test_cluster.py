"""The Slurm executor workaround: job states "CANCELLED by <uid>" read as CANCELLED."""

from __future__ import annotations

import asyncio
import inspect
import types

import pytest
import snakemake_executor_plugin_slurm as plugin

from biasdrift.cluster import normalise_job_state, patch_slurm_executor


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("CANCELLED by 0", "CANCELLED"),
        ("CANCELLED by 1234", "CANCELLED"),
        ("CANCELLED", "CANCELLED"),
        ("COMPLETED", "COMPLETED"),
        ("TIMEOUT", "TIMEOUT"),
        ("RUNNING", "RUNNING"),
    ],
)
def test_normalise_job_state(state, expected):
    assert normalise_job_state(state) == expected


def fake_plugin(states):
    module = types.ModuleType("fake_slurm_plugin")

    async def query_job_status(command, logger):  # noqa: ARG001 - the executor's signature
        return dict(states), 0.01

    module.query_job_status = query_job_status
    return module


def test_patch_normalises_the_states_the_executor_sees():
    module = fake_plugin({"7": "CANCELLED by 0", "8": "COMPLETED", "9": "RUNNING"})
    assert patch_slurm_executor(module)
    states, duration = asyncio.run(module.query_job_status("sacct ...", None))
    assert states == {"7": "CANCELLED", "8": "COMPLETED", "9": "RUNNING"} and duration == 0.01
    assert not patch_slurm_executor(module), "patched once only"


def test_patch_keeps_failed_queries_and_ignores_a_missing_plugin():
    module = fake_plugin({})

    async def failing(command, logger):  # noqa: ARG001
        return None, None

    module.query_job_status = failing
    patch_slurm_executor(module)
    assert asyncio.run(module.query_job_status("sacct", None)) == (None, None)
    assert not patch_slurm_executor(None)


def test_the_pinned_executor_needs_and_takes_the_patch():
    """The executor looks the query up by its module-level name at every poll (so the
    patch takes effect) and would not recognise "CANCELLED by <uid>" by itself."""
    source = inspect.getsource(plugin.Executor.check_active_jobs)
    assert "await query_job_status(" in source
    assert '"CANCELLED",' in source and "CANCELLED by" not in source
