"""The paper-shape smoke tier: every config/paper/*.yaml run end to end offline, on the
CPU, with real-size architectures and real-format data, so a researcher's first cluster
run is not the first run of the paper code path.

How it fits together (config/smoke/README.md says the same for users):

* ``config/smoke/overrides/<study>.yaml`` names the values of ``config/paper/<study>.yaml``
  that the smoke tier changes: sizes (steps, rows, batch sizes) and aliases (a hub model
  becomes a ``path:`` alias to a local fixture, a hub dataset a ``path:`` alias to a local
  file in the hub's format). :mod:`biasdrift.smoke.derive` writes ``config/smoke/<study>.yaml``
  from the two (``make smoke-config``); a test fails when a committed smoke config is not
  what the derivation gives, or when an override names a key the paper config lacks.
* :mod:`biasdrift.smoke.fixtures` holds the fixtures: random-weight models with the real
  hub configs (``MODEL_FIXTURES``; rule ``build_smoke_model`` writes
  ``results/smoke/models/<name>/`` with ``save_pretrained``) and, registered by each study
  in ``biasdrift.<study>.smoke`` with :func:`~biasdrift.smoke.fixtures.register_dataset_fixture`,
  dataset files in the real hub formats (rule ``build_smoke_dataset`` writes
  ``results/smoke/datasets/<name>``, the name carrying the file's extension). Study
  ``smoke`` modules are imported at parse time: keep their imports (pandas, torch) inside
  the builder functions.
* :mod:`biasdrift.smoke.run` (``make smoke``) runs each study's smoke config in its own copy
  of the workflow (``.smoke/<study>/``), so smoke results never mix with the demo's.
"""
