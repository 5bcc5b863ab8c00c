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
# Every rule's params: job=stage_params("d3m", <rule>) (glue biasdrift.d3m.workflow.<rule>,
# job biasdrift.d3m.jobs.<rule>, entry script workflow/scripts/<rule>.py).

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
        job=stage_params("d3m", "prepare_d3m_world"),
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
        backbone=study_input("d3m", "model_inputs"),
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
        job=stage_params("d3m", "finetune_d3m_base"),
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
        job=stage_params("d3m", "score_d3m_trak"),
        code_version=CODE_VERSION["score_d3m_trak"],
    wildcard_constraints:
        world=D3M_WORLD,
        method=alias_regex(D3M.trak_methods(config)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/score_d3m_trak.py"


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
        job=stage_params("d3m", "score_d3m_if"),
        code_version=CODE_VERSION["score_d3m_if"],
    wildcard_constraints:
        world=D3M_WORLD,
        method=alias_regex(D3M.influence_methods(config)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/score_d3m_if.py"


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
        job=stage_params("d3m", "align_d3m"),
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
        job=stage_params("d3m", "retrain_d3m"),
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
        job=stage_params("d3m", "retrain_d3m_baseline"),
        code_version=CODE_VERSION["retrain_d3m_baseline"],
    wildcard_constraints:
        world=D3M_WORLD,
        baseline=alias_regex(D3M.baselines(config)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/retrain_d3m_baseline.py"


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
        job=stage_params("d3m", "aggregate_d3m"),
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
        job=stage_params("d3m", "summarize_d3m_sweep"),
        code_version=CODE_VERSION["summarize_d3m_sweep"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_d3m_sweep.py"


# ---- plots (the HTML report: snakemake --report results/report.html)
#   results/d3m/{world}/plots/{wga_vs_k,accuracy_vs_k}.{svg,csv}       plot_d3m_counterfactual
#   results/d3m/{world}/plots/{score_heatmap,alignment_cells,top_harmful,alignment_scatter}.svg
#                                                                      plot_d3m_attribution
#   results/d3m/sweep/plots/sweep.{svg,csv}                            plot_d3m_sweep


rule plot_d3m_sweep:
    localrule: True
    input:
        table="results/d3m/sweep/sweep.csv",
    output:
        svg=report(
            "results/d3m/sweep/plots/sweep.svg",
            caption="../workflow/report/d3m_sweep.rst",
            category="d3m",
            subcategory="sweep over worlds",
            labels={"figure": "D3M across worlds"},
        ),
        csv="results/d3m/sweep/plots/sweep.csv",
        manifest="results/d3m/sweep/plots/sweep.manifest.json",
    log:
        "logs/d3m/sweep/plot_d3m_sweep.log",
    params:
        job=stage_params("d3m", "plot_d3m_sweep"),
        code_version=CODE_VERSION["plot_d3m_sweep"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_d3m_sweep.py"


rule plot_d3m_counterfactual:
    localrule: True
    input:
        summary="results/d3m/{world}/summary.csv",
        selection="results/d3m/{world}/selection.json",
    output:
        svg=report(
            "results/d3m/{world}/plots/{curve}.svg",
            caption="../workflow/report/d3m_counterfactual.rst",
            category="d3m",
            subcategory="{world}: counterfactual retraining",
            labels={"world": "{world}", "figure": "{curve}"},
        ),
        csv="results/d3m/{world}/plots/{curve}.csv",
        manifest="results/d3m/{world}/plots/{curve}.manifest.json",
    log:
        "logs/d3m/{world}/plots/{curve}/plot_d3m_counterfactual.log",
    params:
        job=stage_params("d3m", "plot_d3m_counterfactual"),
        code_version=CODE_VERSION["plot_d3m_counterfactual"],
    wildcard_constraints:
        world=D3M_WORLD,
        curve=alias_regex(D3M.CURVES),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_d3m_counterfactual.py"


rule plot_d3m_attribution:
    localrule: True
    input:
        unpack(study_input("d3m", "attribution_inputs")),
    output:
        heatmap=report(
            "results/d3m/{world}/plots/score_heatmap.svg",
            caption="../workflow/report/d3m_score_heatmap.rst",
            category="d3m",
            subcategory="{world}: attribution",
            labels={"world": "{world}", "figure": "score heatmap"},
        ),
        cells=report(
            "results/d3m/{world}/plots/alignment_cells.svg",
            caption="../workflow/report/d3m_alignment_cells.rst",
            category="d3m",
            subcategory="{world}: attribution",
            labels={"world": "{world}", "figure": "alignment by cell"},
        ),
        top=report(
            "results/d3m/{world}/plots/top_harmful.svg",
            caption="../workflow/report/d3m_top_harmful.rst",
            category="d3m",
            subcategory="{world}: attribution",
            labels={"world": "{world}", "figure": "most harmful examples"},
        ),
        scatter=report(
            "results/d3m/{world}/plots/alignment_scatter.svg",
            caption="../workflow/report/d3m_alignment_scatter.rst",
            category="d3m",
            subcategory="{world}: attribution",
            labels={"world": "{world}", "figure": "alignment scatter"},
        ),
        csvs=multiext(
            "results/d3m/{world}/plots/",
            "score_heatmap.csv",
            "alignment_cells.csv",
            "top_harmful.csv",
            "alignment_scatter.csv",
        ),
        manifest="results/d3m/{world}/plots/attribution.manifest.json",
    log:
        "logs/d3m/{world}/plots/plot_d3m_attribution.log",
    params:
        job=stage_params("d3m", "plot_d3m_attribution"),
        code_version=CODE_VERSION["plot_d3m_attribution"],
    wildcard_constraints:
        world=D3M_WORLD,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_d3m_attribution.py"
