# Study "tinystories" (seed 004, ../shared/specs/tinystories.md): does fine-tuning delete a
# feature (Twist) from a llama2.c-style model trained from scratch, or only hide it?
# Glue (paths, input functions, wildcard constraints) in biasdrift.tinystories.workflow.
#   results/tinystories/corpus/{synthetic,hub}.tar.gz                synthesize_stories | download_stories
#   results/tinystories/corpus/shards/ + manifest.json                unpack_stories
#   results/tinystories/vocab/tok.model|tok.vocab|meta.json           train_vocab
#   results/tinystories/tokens/{spec}/shards/ + meta.json             pretokenize      (spec: dataset name)
#   results/tinystories/pretrain/{base}/model                         pretrain_story_model (base: all|control)
#   results/tinystories/delete/{protocol}/lr{lr}/seed{seed}/model     delete_feature
#   results/tinystories/recover/{source}/seed{seed}/step{step}/model  recover_feature  (source: control|{protocol}-lr{lr})
#   results/tinystories/{run}/eval.json + probes.json                 evaluate_story_model (run: pretrain/.., delete/..)
#   results/tinystories/recover/{source}/seed{seed}/recovery.json     evaluate_recovery
#   results/tinystories/summary/{results,recovery,agreement}.csv + checks.json  summarize_tinystories
# Training state lives in undeclared .scratch/ folders beside the outputs (resume).

TS = bdc.plugins.study_module("tinystories", "workflow")
TS_WILDCARDS = TS.wildcard_regexes(config)
TS_STEPS = TS.recovery_steps(config)
TS_TOKENIZER = "results/tinystories/vocab/tok.model"


wildcard_constraints:
    spec=TS_WILDCARDS["spec"],
    base=TS_WILDCARDS["base"],
    protocol=TS_WILDCARDS["protocol"],
    lr=TS_WILDCARDS["lr"],
    source=TS_WILDCARDS["source"],
    step=TS_WILDCARDS["step"],


# priority: the pretraining chain is the demo's longest; started first, the many short jobs
# of the other studies fill the second core around it (bench/bench_demo.py, critical_path)
rule synthesize_stories:
    output:
        tarball="results/tinystories/corpus/synthetic.tar.gz",
        manifest="results/tinystories/corpus/synthetic.manifest.json",
    log:
        "logs/tinystories/corpus/synthesize_stories.log",
    benchmark:
        "benchmarks/tinystories/corpus/synthesize_stories.tsv"
    params:
        job=stage_params("tinystories", "synthesize_stories"),
        code_version=CODE_VERSION["synthesize_stories"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_synthesize_stories.py"


rule download_stories:
    localrule: True
    output:
        tarball="results/tinystories/corpus/hub.tar.gz",
        manifest="results/tinystories/corpus/hub.manifest.json",
    log:
        "logs/tinystories/corpus/download_stories.log",
    params:
        job=stage_params("tinystories", "download_stories"),
        code_version=CODE_VERSION["download_stories"],
    retries: 3
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_download_stories.py"


rule unpack_stories:
    input:
        tarball=study_input("tinystories", "corpus_tarball"),
    output:
        shards=directory("results/tinystories/corpus/shards"),
        counts="results/tinystories/corpus/manifest.json",
        manifest="results/tinystories/corpus/unpack.manifest.json",
    log:
        "logs/tinystories/corpus/unpack_stories.log",
    benchmark:
        "benchmarks/tinystories/corpus/unpack_stories.tsv"
    params:
        job=stage_params("tinystories", "unpack_stories"),
        code_version=CODE_VERSION["unpack_stories"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_unpack_stories.py"


rule train_vocab:
    input:
        shards="results/tinystories/corpus/shards",
    output:
        model=TS_TOKENIZER,
        vocab="results/tinystories/vocab/tok.vocab",
        meta="results/tinystories/vocab/meta.json",
        manifest="results/tinystories/vocab/manifest.json",
    log:
        "logs/tinystories/vocab/train_vocab.log",
    benchmark:
        "benchmarks/tinystories/vocab/train_vocab.tsv"
    params:
        job=stage_params("tinystories", "train_vocab"),
        code_version=CODE_VERSION["train_vocab"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_train_vocab.py"


rule pretokenize:
    input:
        corpus="results/tinystories/corpus/shards",
        tokenizer=TS_TOKENIZER,
    output:
        tokens=directory("results/tinystories/tokens/{spec}/shards"),
        meta="results/tinystories/tokens/{spec}/meta.json",
        manifest="results/tinystories/tokens/{spec}/manifest.json",
    log:
        "logs/tinystories/tokens/{spec}/pretokenize.log",
    benchmark:
        "benchmarks/tinystories/tokens/{spec}/pretokenize.tsv"
    params:
        job=stage_params("tinystories", "pretokenize"),
        code_version=CODE_VERSION["pretokenize"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_pretokenize.py"


rule pretrain_story_model:
    input:
        data=study_input("tinystories", "pretrain_data"),
        tokenizer=TS_TOKENIZER,
    output:
        model=directory("results/tinystories/pretrain/{base}/model"),
        metrics=ensure(
            "results/tinystories/pretrain/{base}/train_metrics.json", non_empty=True
        ),
        manifest="results/tinystories/pretrain/{base}/manifest.json",
    log:
        "logs/tinystories/pretrain/{base}/pretrain_story_model.log",
    benchmark:
        "benchmarks/tinystories/pretrain/{base}/pretrain_story_model.tsv"
    params:
        job=stage_params("tinystories", "pretrain_story_model"),
        code_version=CODE_VERSION["pretrain_story_model"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_pretrain_story_model.py"


rule delete_feature:
    input:
        data=study_input("tinystories", "deletion_data"),
        init="results/tinystories/pretrain/all/model",
        tokenizer=TS_TOKENIZER,
    output:
        model=directory("results/tinystories/delete/{protocol}/lr{lr}/seed{seed}/model"),
        metrics=ensure(
            "results/tinystories/delete/{protocol}/lr{lr}/seed{seed}/train_metrics.json",
            non_empty=True,
        ),
        manifest="results/tinystories/delete/{protocol}/lr{lr}/seed{seed}/manifest.json",
    log:
        "logs/tinystories/delete/{protocol}/lr{lr}/seed{seed}/delete_feature.log",
    benchmark:
        "benchmarks/tinystories/delete/{protocol}/lr{lr}/seed{seed}/delete_feature.tsv"
    params:
        job=stage_params("tinystories", "delete_feature"),
        code_version=CODE_VERSION["delete_feature"],
    priority: 20
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_delete_feature.py"


rule recover_feature:
    input:
        data=study_input("tinystories", "recovery_data"),
        init=study_input("tinystories", "recovery_source_model"),
        tokenizer=TS_TOKENIZER,
    output:
        checkpoints=directory(
            expand(
                "results/tinystories/recover/{{source}}/seed{{seed}}/step{step}/model",
                step=TS_STEPS,
            )
        ),
        metrics=ensure(
            "results/tinystories/recover/{source}/seed{seed}/train_metrics.json",
            non_empty=True,
        ),
        manifest="results/tinystories/recover/{source}/seed{seed}/manifest.json",
    log:
        "logs/tinystories/recover/{source}/seed{seed}/recover_feature.log",
    benchmark:
        "benchmarks/tinystories/recover/{source}/seed{seed}/recover_feature.tsv"
    params:
        job=stage_params("tinystories", "recover_feature"),
        code_version=CODE_VERSION["recover_feature"],
    priority: 20
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_recover_feature.py"


rule evaluate_story_model:
    input:
        model="results/tinystories/{run}/model",
        shards="results/tinystories/corpus/shards",
        tokenizer=TS_TOKENIZER,
        eval_tokens=study_input("tinystories", "eval_token_dirs"),
        judge_model=study_input("tinystories", "judge_inputs"),
    output:
        evaluation="results/tinystories/{run}/eval.json",
        probes="results/tinystories/{run}/probes.json",
        generations="results/tinystories/{run}/generations.jsonl",
        manifest="results/tinystories/{run}/eval.manifest.json",
    log:
        "logs/tinystories/{run}/evaluate_story_model.log",
    benchmark:
        "benchmarks/tinystories/{run}/evaluate_story_model.tsv"
    params:
        job=stage_params("tinystories", "evaluate_story_model"),
        code_version=CODE_VERSION["evaluate_story_model"],
    wildcard_constraints:
        run=TS_WILDCARDS["run"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_evaluate_story_model.py"


rule evaluate_recovery:
    input:
        checkpoints=study_input("tinystories", "recovery_checkpoints"),
        shards="results/tinystories/corpus/shards",
        tokenizer=TS_TOKENIZER,
        eval_tokens=study_input("tinystories", "eval_token_dirs"),
        judge_model=study_input("tinystories", "judge_inputs"),
    output:
        evaluation="results/tinystories/recover/{source}/seed{seed}/recovery.json",
        generations="results/tinystories/recover/{source}/seed{seed}/generations.jsonl",
        manifest="results/tinystories/recover/{source}/seed{seed}/recovery.manifest.json",
    log:
        "logs/tinystories/recover/{source}/seed{seed}/evaluate_recovery.log",
    benchmark:
        "benchmarks/tinystories/recover/{source}/seed{seed}/evaluate_recovery.tsv"
    params:
        job=stage_params("tinystories", "evaluate_recovery"),
        code_version=CODE_VERSION["evaluate_recovery"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/tinystories_evaluate_recovery.py"


rule summarize_tinystories:
    localrule: True
    input:
        evals=study_input("tinystories", "model_evals"),
        model_probes=study_input("tinystories", "model_probes"),
        recoveries=study_input("tinystories", "recovery_evals"),
    output:
        results="results/tinystories/summary/results.csv",
        recovery="results/tinystories/summary/recovery.csv",
        probes="results/tinystories/summary/probes.csv",
        checks="results/tinystories/summary/checks.json",
        agreement="results/tinystories/summary/agreement.csv",
        manifest="results/tinystories/summary/manifest.json",
    log:
        "logs/tinystories/summary/summarize_tinystories.log",
    params:
        job=stage_params("tinystories", "summarize_tinystories"),
        code_version=CODE_VERSION["summarize_tinystories"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_tinystories.py"


# ---- plots (the HTML report: snakemake --report results/report.html)
#   results/tinystories/plots/{recovery,probes,deletion_grid}.{svg,csv}   plot_tinystories


rule plot_tinystories:
    localrule: True
    input:
        results="results/tinystories/summary/results.csv",
        recovery="results/tinystories/summary/recovery.csv",
        probes="results/tinystories/summary/probes.csv",
    output:
        recovery_svg=report(
            "results/tinystories/plots/recovery.svg",
            caption="../workflow/report/tinystories_recovery.rst",
            category="tinystories",
            labels={"figure": "recovery"},
        ),
        recovery_csv="results/tinystories/plots/recovery.csv",
        probes_svg=report(
            "results/tinystories/plots/probes.svg",
            caption="../workflow/report/tinystories_probes.rst",
            category="tinystories",
            labels={"figure": "probes"},
        ),
        probes_csv="results/tinystories/plots/probes.csv",
        grid_svg=report(
            "results/tinystories/plots/deletion_grid.svg",
            caption="../workflow/report/tinystories_deletion_grid.rst",
            category="tinystories",
            labels={"figure": "deletion grid"},
        ),
        grid_csv="results/tinystories/plots/deletion_grid.csv",
        manifest="results/tinystories/plots/manifest.json",
    log:
        "logs/tinystories/plots/plot_tinystories.log",
    params:
        job=stage_params("tinystories", "plot_tinystories"),
        code_version=CODE_VERSION["plot_tinystories"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_tinystories.py"
