"""Workarounds for the Slurm executor (snakemake-executor-plugin-slurm), applied by
rules/common.smk while Snakemake parses the workflow.

The executor (2.8.0, the pinned version) polls job states with
``sacct --format=JobIdRaw,State`` and treats a job as failed only if its state is
exactly one of its failure states. Slurm reports a job ended with ``scancel`` as
``CANCELLED by <uid>``, which matches none of them, so Snakemake took a cancelled job
for a running one and waited for it forever (tests/test_slurm.py shows it). Normalising
such states to ``CANCELLED`` makes Snakemake report the job as failed, remove its
outputs, retry it or go on with the rest (--keep-going).
"""

from __future__ import annotations

import functools
import logging
import re
from types import ModuleType

log = logging.getLogger(__name__)

# "CANCELLED by 0", "CANCELLED by 1234": Slurm names who cancelled the job
_BY_WHOM = re.compile(r"^(\w+) by \S+$")


def normalise_job_state(state: str) -> str:
    """``CANCELLED by 1234`` -> ``CANCELLED``; any other state is returned unchanged."""
    match = _BY_WHOM.match(state.strip())
    return match.group(1) if match else state


def patch_slurm_executor(plugin: ModuleType | None) -> bool:
    """Wrap the executor module's job-state query so that the states it returns are
    normalised (:func:`normalise_job_state`). ``plugin`` is the imported
    ``snakemake_executor_plugin_slurm`` module, or None when it is not loaded. Returns
    whether a patch was applied (once per process; harmless on a fixed executor)."""
    query = getattr(plugin, "query_job_status", None)
    if query is None or getattr(query, "normalises_states", False):
        return False

    @functools.wraps(query)
    async def query_job_status(*args, **kwargs):
        states, duration = await query(*args, **kwargs)
        if states:
            states = {job: normalise_job_state(state) for job, state in states.items()}
        return states, duration

    query_job_status.normalises_states = True
    plugin.query_job_status = query_job_status
    return True
