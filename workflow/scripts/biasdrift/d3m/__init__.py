"""Study "d3m" (seed 003): D3M data debiasing of a hate-speech classifier with TRAK and
influence functions, proven by counterfactual retraining (spec: specs/d3m.md).

Modules: ``workflow`` (torch-free glue), ``generators`` (the synthetic world),
``data`` (world preparation: uids, cells, splits), ``classifier`` (fine-tuning and
predictions), ``attribution`` (TRAK and EKFAC score matrices), ``alignment`` (group
alignment and removal sets), ``metrics``, ``aggregate``, ``plots``, ``linear`` (an exact
logistic-regression reference world used by the tests).
"""
