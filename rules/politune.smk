# Study "politune" (seed 001; spec ../shared/specs/politune.md): LoRA / QLoRA DPO and
# SFT towards a political side, and how far the model moves.
#   results/politune/data/{side}.parquet                          prepare_pairs
#   results/politune/{model}/{side}/{method}/adapters/            train_politune (final/, step-N/)
#   results/politune/{model}/{side}/{method}/train_metrics.json   train_politune
#   results/politune/{model}/{side}/{method}/.scratch/            undeclared resumable state
#   results/politune/{model}/{state}/*.parquet                    evaluate_politune
#   results/politune/{model}/judge.parquet                        judge_answers
#   results/politune/{model}/{side}/{method}/merged/              merge_adapter (merge: true)
#   results/politune/summary.json + {scores,item_scores,preferences,training,judge,compass}.csv   summarize_politune
# {state} is "base" or "{side}/{method}/step{N}" (N a configured step or "final").


rule prepare_pairs:
    input:
        sources=study_input("politune", "get_pairs_inputs"),
    output:
        data=ensure("results/politune/data/{side}.parquet", non_empty=True),
        manifest="results/politune/data/{side}.manifest.json",
    log:
        "logs/politune/data/{side}/prepare_pairs.log",
    params:
        job=stage_params("politune", "prepare_pairs"),
        code_version=CODE_VERSION["prepare_pairs"],
    wildcard_constraints:
        side=r"[a-z0-9][a-z0-9_-]*",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/politune_prepare_pairs.py"


rule train_politune:
    input:
        model=study_input("politune", "get_model_inputs"),
        pairs="results/politune/data/{side}.parquet",
    output:
        adapters=directory("results/politune/{model}/{side}/{method}/adapters"),
        metrics=ensure(
            "results/politune/{model}/{side}/{method}/train_metrics.json",
            non_empty=True,
        ),
        manifest="results/politune/{model}/{side}/{method}/manifest.json",
    log:
        "logs/politune/{model}/{side}/{method}/train_politune.log",
    benchmark:
        "benchmarks/politune/{model}/{side}/{method}/train_politune.tsv"
    params:
        job=stage_params("politune", "train_politune"),
        code_version=CODE_VERSION["train_politune"],
    wildcard_constraints:
        side=r"[a-z0-9][a-z0-9_-]*",
        method="dpo|sft",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_politune.py"


rule evaluate_politune:
    input:
        unpack(study_input("politune", "get_eval_inputs")),
    output:
        statements="results/politune/{model}/{state}/statements.parquet",
        answers="results/politune/{model}/{state}/answers.parquet",
        preferences="results/politune/{model}/{state}/preferences.parquet",
        manifest="results/politune/{model}/{state}/manifest.json",
    log:
        "logs/politune/{model}/{state}/evaluate_politune.log",
    benchmark:
        "benchmarks/politune/{model}/{state}/evaluate_politune.tsv"
    params:
        job=stage_params("politune", "evaluate_politune"),
        code_version=CODE_VERSION["evaluate_politune"],
    wildcard_constraints:
        state=r"base|[a-z0-9][a-z0-9_-]*/(dpo|sft)/step(\d+|final)",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/evaluate_politune.py"


rule judge_answers:
    input:
        unpack(study_input("politune", "get_judge_inputs")),
    output:
        judged="results/politune/{model}/judge.parquet",
        manifest="results/politune/{model}/judge.manifest.json",
    log:
        "logs/politune/{model}/judge_answers.log",
    benchmark:
        "benchmarks/politune/{model}/judge_answers.tsv"
    params:
        job=stage_params("politune", "judge_answers"),
        code_version=CODE_VERSION["judge_answers"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/politune_judge_answers.py"


rule merge_adapter:
    input:
        model=study_input("politune", "get_model_inputs"),
        adapters="results/politune/{model}/{side}/{method}/adapters",
    output:
        merged=directory("results/politune/{model}/{side}/{method}/merged"),
        manifest="results/politune/{model}/{side}/{method}/merged.manifest.json",
    log:
        "logs/politune/{model}/{side}/{method}/merge_adapter.log",
    params:
        job=stage_params("politune", "merge_adapter"),
        code_version=CODE_VERSION["merge_adapter"],
    wildcard_constraints:
        side=r"[a-z0-9][a-z0-9_-]*",
        method="dpo|sft",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/politune_merge_adapter.py"


rule summarize_politune:
    localrule: True
    input:
        files=study_input("politune", "get_summary_inputs"),
    output:
        summary=ensure("results/politune/summary.json", non_empty=True),
        scores="results/politune/scores.csv",
        item_scores="results/politune/item_scores.csv",
        preferences="results/politune/preferences.csv",
        training="results/politune/training.csv",
        judge="results/politune/judge.csv",
        compass="results/politune/compass.csv",
        manifest="results/politune/summary.manifest.json",
    log:
        "logs/politune/summarize_politune.log",
    params:
        job=stage_params("politune", "summarize_politune"),
        code_version=CODE_VERSION["summarize_politune"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_politune.py"


# ---- plots (the HTML report: snakemake --report results/report.html)
#   results/politune/plots/{axes,trajectory,items,preference}.{svg,csv}   plot_politune
#   results/politune/plots/judge.{svg,csv}                                plot_politune_judge
#   results/politune/plots/compass.{svg,csv}                              plot_politune_compass


rule plot_politune:
    localrule: True
    input:
        summary="results/politune/summary.json",
        scores="results/politune/scores.csv",
        item_scores="results/politune/item_scores.csv",
        preferences="results/politune/preferences.csv",
        training="results/politune/training.csv",
    output:
        axes_svg=report(
            "results/politune/plots/axes.svg",
            caption="../workflow/report/politune_axes.rst",
            category="politune",
            subcategory="Statement probe",
            labels={"figure": "axis scores"},
        ),
        axes_csv="results/politune/plots/axes.csv",
        trajectory_svg=report(
            "results/politune/plots/trajectory.svg",
            caption="../workflow/report/politune_trajectory.rst",
            category="politune",
            subcategory="Statement probe",
            labels={"figure": "score vs step"},
        ),
        trajectory_csv="results/politune/plots/trajectory.csv",
        items_svg=report(
            "results/politune/plots/items.svg",
            caption="../workflow/report/politune_items.rst",
            category="politune",
            subcategory="Statement probe",
            labels={"figure": "per statement"},
        ),
        items_csv="results/politune/plots/items.csv",
        preference_svg=report(
            "results/politune/plots/preference.svg",
            caption="../workflow/report/politune_preference.rst",
            category="politune",
            subcategory="Preferences",
            labels={"figure": "held-out accuracy and margin"},
        ),
        preference_csv="results/politune/plots/preference.csv",
        manifest="results/politune/plots/politune.manifest.json",
    log:
        "logs/politune/plots/plot_politune.log",
    params:
        job=stage_params("politune", "plot_politune"),
        code_version=CODE_VERSION["plot_politune"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_politune.py"


rule plot_politune_judge:
    localrule: True
    input:
        judge="results/politune/judge.csv",
    output:
        svg=report(
            "results/politune/plots/judge.svg",
            caption="../workflow/report/politune_judge.rst",
            category="politune",
            subcategory="Free-text probe",
            labels={"figure": "judge score vs step"},
        ),
        csv="results/politune/plots/judge.csv",
        manifest="results/politune/plots/judge.manifest.json",
    log:
        "logs/politune/plots/plot_politune_judge.log",
    params:
        job=stage_params("politune", "plot_politune_judge"),
        code_version=CODE_VERSION["plot_politune_judge"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_politune_judge.py"


rule plot_politune_compass:
    localrule: True
    input:
        summary="results/politune/summary.json",
        compass="results/politune/compass.csv",
    output:
        svg=report(
            "results/politune/plots/compass.svg",
            caption="../workflow/report/politune_compass.rst",
            category="politune",
            subcategory="Statement probe",
            labels={"figure": "Political Compass"},
        ),
        csv="results/politune/plots/compass.csv",
        manifest="results/politune/plots/compass.manifest.json",
    log:
        "logs/politune/plots/plot_politune_compass.log",
    params:
        job=stage_params("politune", "plot_politune_compass"),
        code_version=CODE_VERSION["plot_politune_compass"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_politune_compass.py"
