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
        unpack(study_input("politune", "get_pairs_inputs")),
    output:
        data=ensure("results/politune/data/{side}.parquet", non_empty=True),
        manifest="results/politune/data/{side}.manifest.json",
    log:
        "logs/politune/data/{side}/prepare_pairs.log",
    params:
        spec=study_input("politune", "get_pairs_spec"),
        data=lookup(dpath="studies/politune/data", within=config, default=None),
        code_version=CODE_VERSION["prepare_pairs"],
    wildcard_constraints:
        side=r"[a-z0-9][a-z0-9_-]*",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/prepare_pairs.py"


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
        model=study_input("politune", "get_model_ref"),
        train=study_input("politune", "get_train_params"),
        runtime=lookup(dpath="runtime", within=config),
        scratch="results/politune/{model}/{side}/{method}/.scratch/train_politune",
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
        model=study_input("politune", "get_model_ref"),
        eval=study_input("politune", "get_eval_params"),
        runtime=lookup(dpath="runtime", within=config),
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
        judge=study_input("politune", "get_judge_params"),
        runtime=lookup(dpath="runtime", within=config),
        code_version=CODE_VERSION["judge_answers"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/judge_answers.py"


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
        model=study_input("politune", "get_model_ref"),
        lora=lookup(dpath="studies/politune/lora", within=config, default=None),
        runtime=lookup(dpath="runtime", within=config),
        code_version=CODE_VERSION["merge_adapter"],
    wildcard_constraints:
        side=r"[a-z0-9][a-z0-9_-]*",
        method="dpo|sft",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/merge_adapter.py"


rule summarize_politune:
    localrule: True
    input:
        study_input("politune", "get_summary_inputs"),
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
        layout=study_input("politune", "get_summary_layout"),
        code_version=CODE_VERSION["summarize_politune"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_politune.py"
