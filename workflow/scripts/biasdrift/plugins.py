"""Where the studies plug into the shared code, by naming convention.

Each study is a subpackage ``biasdrift.<study>``. The shared registries import a study's
modules lazily, only when they are looked up:

* ``biasdrift.<study>.workflow``: torch-free workflow glue, imported at parse time:
  ``CODE_VERSION`` (rule -> int), ``targets(config)``, ``problems(config)`` and the
  input/param functions its rules bind with ``study_input`` (rules/common.smk);
* ``biasdrift.<study>.generators``: dataset generators (:mod:`biasdrift.corpora`);
* ``biasdrift.<study>.architectures``: model architectures (:mod:`biasdrift.models`);
* ``biasdrift.<study>.tokenizers``: tokenizer kinds (:mod:`biasdrift.tokenization`).

The study's schema lives in ``config/schema/<study>.yaml`` (see
:func:`biasdrift.config.load_schema`).
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

STUDIES = ("circuits", "politune", "specdec", "d3m", "tinystories")


def study_module(study: str, part: str) -> ModuleType | None:
    """``biasdrift.<study>.<part>`` if the study ships that module, else None."""
    if study not in STUDIES:
        raise KeyError(f"unknown study {study!r}; known: {', '.join(STUDIES)}")
    name = f"biasdrift.{study}.{part}"
    try:
        if importlib.util.find_spec(f"biasdrift.{study}") is None or importlib.util.find_spec(name) is None:
            return None
    except ModuleNotFoundError:
        return None
    return importlib.import_module(name)


def load(part: str) -> list[ModuleType]:
    """Import ``biasdrift.<study>.<part>`` of every study that has one."""
    return [m for m in (study_module(s, part) for s in STUDIES) if m is not None]
