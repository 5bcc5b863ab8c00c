# Study "d3m" (seed 003, ../shared/specs/d3m.md): D3M data debiasing of a hate-speech
# classifier with TRAK and influence functions, proven by counterfactual retraining.
#   results/d3m/{world}/data.parquet                           prepare_d3m_world
#   results/d3m/{world}/base/seed{seed}/model/ + preds.parquet finetune_d3m_base
#   results/d3m/{world}/scores/{method}/scores.npy + uids.json score_d3m_trak, score_d3m_if
#   results/d3m/{world}/align/{method}.parquet                 align_d3m
#   results/d3m/{world}/cf/{method}/k{k}/seed{seed}/           retrain_d3m
#   results/d3m/{world}/cf/{baseline}/seed{seed}/              retrain_d3m_baseline
#   results/d3m/{world}/counterfactual.parquet + summary.csv   aggregate_d3m
#   results/d3m/sweep/sweep.csv + sweep.json                   summarize_d3m_sweep
# Resumable training state: undeclared .scratch/ folders beside each run's outputs.
# Lookups without a wildcard are evaluated at parse time: default=None keeps a config
# without studies.d3m parsing (no d3m job is then requested).

D3M = bdc.plugins.study_module("d3m", "workflow")
D3M_WORLD = alias_regex(D3M.worlds(config))


rule prepare_d3m_world:
    input:
        unpack(study_input("d3m", "world_inputs")),
    output:
        data=ensure("results/d3m/{world}/data.parquet", non_empty=True),
        manifest="results/d3m/{world}/manifest.json",
    log:
        "logs/d3m/{world}/prepare_d3m_world.log",
    benchmark:
        "benchmarks/d3m/{world}/prepare_d3m_world.tsv"
    params:
        world=study_input("d3m", "prepare_params"),
        code_version=CODE_VERSION["prepare_d3m_world"],
    wildcard_constraints:
        world=D3M_WORLD,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/prepare_d3m_world.py"


rule finetune_d3m_base:
    input:
        data="results/d3m/{world}/data.parquet",
        model=study_input("d3m", "model_inputs"),
    output:
        model=directory("results/d3m/{world}/base/seed{seed}/model"),
        preds="results/d3m/{world}/base/seed{seed}/preds.parquet",
        metrics="results/d3m/{world}/base/seed{seed}/metrics.json",
        train_metrics="results/d3m/{world}/base/seed{seed}/train_metrics.json",
        manifest="results/d3m/{world}/base/seed{seed}/manifest.json",
    log:
        "logs/d3m/{world}/base/seed{seed}/finetune_d3m_base.log",
    benchmark:
        "benchmarks/d3m/{world}/base/seed{seed}/finetune_d3m_base.tsv"
    params:
        model_ref=study_input("d3m", "model_ref"),
        finetune=lookup(dpath="studies/d3m/finetune", within=config, default=None),
        max_length=lookup(dpath="studies/d3m/max_length", within=config, default=None),
        metrics=lookup(dpath="studies/d3m/metrics", within=config, default=None),
        snapshot_epochs=study_input("d3m", "snapshot_epochs"),
        runtime=lookup(dpath="runtime", within=config),
        scratch="results/d3m/{world}/base/seed{seed}/.scratch/finetune_d3m_base",
        code_version=CODE_VERSION["finetune_d3m_base"],
    wildcard_constraints:
        world=D3M_WORLD,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/finetune_d3m_base.py"


rule score_d3m_trak:
    input:
        data="results/d3m/{world}/data.parquet",
        models=study_input("d3m", "trak_checkpoints"),
    output:
        scores="results/d3m/{world}/scores/{method}/scores.npy",
        uids="results/d3m/{world}/scores/{method}/uids.json",
        manifest="results/d3m/{world}/scores/{method}/manifest.json",
    log:
        "logs/d3m/{world}/scores/{method}/score_d3m_trak.log",
    benchmark:
        "benchmarks/d3m/{world}/scores/{method}/score_d3m_trak.tsv"
    params:
        trak=study_input("d3m", "trak_spec"),
        query_split=lookup(dpath="studies/d3m/query_split", within=config, default=None),
        max_length=lookup(dpath="studies/d3m/max_length", within=config, default=None),
        runtime=lookup(dpath="runtime", within=config),
        work="results/d3m/{world}/scores/{method}/.scratch/score_d3m_trak",
        code_version=CODE_VERSION["score_d3m_trak"],
    wildcard_constraints:
        world=D3M_WORLD,
        method=alias_regex(D3M.trak_methods(config)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/score_d3m.py"


rule score_d3m_if:
    input:
        data="results/d3m/{world}/data.parquet",
        models=study_input("d3m", "score_model"),
    output:
        scores="results/d3m/{world}/scores/{method}/scores.npy",
        uids="results/d3m/{world}/scores/{method}/uids.json",
        manifest="results/d3m/{world}/scores/{method}/manifest.json",
    log:
        "logs/d3m/{world}/scores/{method}/score_d3m_if.log",
    benchmark:
        "benchmarks/d3m/{world}/scores/{method}/score_d3m_if.tsv"
    params:
        influence=lookup(dpath="studies/d3m/influence/{method}", within=config),
        query_split=lookup(dpath="studies/d3m/query_split", within=config, default=None),
        max_length=lookup(dpath="studies/d3m/max_length", within=config, default=None),
        score_seed=lookup(dpath="studies/d3m/score_seed", within=config, default=None),
        runtime=lookup(dpath="runtime", within=config),
        work="results/d3m/{world}/scores/{method}/.scratch/score_d3m_if",
        code_version=CODE_VERSION["score_d3m_if"],
    wildcard_constraints:
        world=D3M_WORLD,
        method=alias_regex(D3M.influence_methods(config)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/score_d3m.py"


rule align_d3m:
    input:
        unpack(study_input("d3m", "score_files")),
        data="results/d3m/{world}/data.parquet",
        preds=study_input("d3m", "score_preds"),
    output:
        align="results/d3m/{world}/align/{method}.parquet",
        groups="results/d3m/{world}/align/{method}.groups.csv",
        manifest="results/d3m/{world}/align/{method}.manifest.json",
    log:
        "logs/d3m/{world}/align/{method}/align_d3m.log",
    benchmark:
        "benchmarks/d3m/{world}/align/{method}/align_d3m.tsv"
    params:
        query_split=lookup(dpath="studies/d3m/query_split", within=config, default=None),
        grouping=lookup(dpath="studies/d3m/grouping", within=config, default=None),
        code_version=CODE_VERSION["align_d3m"],
    wildcard_constraints:
        world=D3M_WORLD,
        method=alias_regex(D3M.attribution_methods(config)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/align_d3m.py"


rule retrain_d3m:
    input:
        unpack(study_input("d3m", "retrain_inputs")),
    output:
        removed="results/d3m/{world}/cf/{method}/k{k}/seed{seed}/removed.txt",
        preds="results/d3m/{world}/cf/{method}/k{k}/seed{seed}/preds.parquet",
        metrics="results/d3m/{world}/cf/{method}/k{k}/seed{seed}/metrics.json",
        train_metrics="results/d3m/{world}/cf/{method}/k{k}/seed{seed}/train_metrics.json",
        manifest="results/d3m/{world}/cf/{method}/k{k}/seed{seed}/manifest.json",
    log:
        "logs/d3m/{world}/cf/{method}/k{k}/seed{seed}/retrain_d3m.log",
    benchmark:
        "benchmarks/d3m/{world}/cf/{method}/k{k}/seed{seed}/retrain_d3m.tsv"
    params:
        model_ref=study_input("d3m", "model_ref"),
        finetune=lookup(dpath="studies/d3m/finetune", within=config, default=None),
        max_length=lookup(dpath="studies/d3m/max_length", within=config, default=None),
        metrics=lookup(dpath="studies/d3m/metrics", within=config, default=None),
        unit=lookup(dpath="studies/d3m/removal/unit", within=config, default=None),
        runtime=lookup(dpath="runtime", within=config),
        scratch="results/d3m/{world}/cf/{method}/k{k}/seed{seed}/.scratch/retrain_d3m",
        code_version=CODE_VERSION["retrain_d3m"],
    wildcard_constraints:
        world=D3M_WORLD,
        method=alias_regex(D3M.removal_methods(config)),
        k=alias_regex(D3M.k_values(config)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/retrain_d3m.py"


rule retrain_d3m_baseline:
    input:
        unpack(study_input("d3m", "retrain_inputs")),
    output:
        removed="results/d3m/{world}/cf/{baseline}/seed{seed}/removed.txt",
        preds="results/d3m/{world}/cf/{baseline}/seed{seed}/preds.parquet",
        metrics="results/d3m/{world}/cf/{baseline}/seed{seed}/metrics.json",
        train_metrics="results/d3m/{world}/cf/{baseline}/seed{seed}/train_metrics.json",
        manifest="results/d3m/{world}/cf/{baseline}/seed{seed}/manifest.json",
    log:
        "logs/d3m/{world}/cf/{baseline}/seed{seed}/retrain_d3m_baseline.log",
    benchmark:
        "benchmarks/d3m/{world}/cf/{baseline}/seed{seed}/retrain_d3m_baseline.tsv"
    params:
        model_ref=study_input("d3m", "model_ref"),
        finetune=lookup(dpath="studies/d3m/finetune", within=config, default=None),
        max_length=lookup(dpath="studies/d3m/max_length", within=config, default=None),
        metrics=lookup(dpath="studies/d3m/metrics", within=config, default=None),
        unit=lookup(dpath="studies/d3m/removal/unit", within=config, default=None),
        runtime=lookup(dpath="runtime", within=config),
        scratch="results/d3m/{world}/cf/{baseline}/seed{seed}/.scratch/retrain_d3m_baseline",
        code_version=CODE_VERSION["retrain_d3m_baseline"],
    wildcard_constraints:
        world=D3M_WORLD,
        baseline=alias_regex(D3M.baselines(config)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/retrain_d3m.py"


rule aggregate_d3m:
    localrule: True
    input:
        runs=study_input("d3m", "world_runs"),
    output:
        long="results/d3m/{world}/counterfactual.parquet",
        summary="results/d3m/{world}/summary.csv",
        selection="results/d3m/{world}/selection.json",
        manifest="results/d3m/{world}/summary.manifest.json",
    log:
        "logs/d3m/{world}/aggregate_d3m.log",
    params:
        metrics=lookup(dpath="studies/d3m/metrics", within=config, default=None),
        code_version=CODE_VERSION["aggregate_d3m"],
    wildcard_constraints:
        world=D3M_WORLD,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/aggregate_d3m.py"


rule summarize_d3m_sweep:
    localrule: True
    input:
        unpack(study_input("d3m", "sweep_inputs")),
    output:
        csv=report(
            "results/d3m/sweep/sweep.csv",
            caption="../workflow/report/d3m_sweep_table.rst",
            category="d3m",
            subcategory="sweep over worlds",
            labels={"table": "every world and method"},
        ),
        json="results/d3m/sweep/sweep.json",
        manifest="results/d3m/sweep/manifest.json",
    log:
        "logs/d3m/sweep/summarize_d3m_sweep.log",
    params:
        sweep=study_input("d3m", "sweep_params"),
        code_version=CODE_VERSION["summarize_d3m_sweep"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_d3m_sweep.py"
