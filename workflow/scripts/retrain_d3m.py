"""Rules retrain_d3m and retrain_d3m_baseline: remove a set of training examples, retrain, evaluate."""

from biasdrift.d3m.classifier import set_threads
from biasdrift.d3m.counterfactual import removal_kind, retrain, run_spec
from biasdrift.runtime import job_for


def main(smk) -> None:
    with_k = smk.rule == "retrain_d3m"  # retrain_d3m_baseline runs have no k
    method = smk.wildcards.method if with_k else smk.wildcards.baseline
    with job_for(smk, seed=int(smk.wildcards.seed), deterministic=smk.params.runtime["deterministic"]) as record:
        set_threads(smk.threads)
        record.update(
            retrain(
                run_spec(smk),
                kind=removal_kind(method),
                method=method,
                k=float(smk.wildcards.k) if with_k else None,
                unit=smk.params.unit,
                align_path=smk.input.get("align"),
                removed_path=smk.output.removed,
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
