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
        synthetic=lookup(
            dpath="studies/tinystories/corpus/synthetic", within=config, default=None
        ),
        code_version=CODE_VERSION["synthesize_stories"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/synthesize_stories.py"


rule download_stories:
    localrule: True
    output:
        tarball="results/tinystories/corpus/hub.tar.gz",
        manifest="results/tinystories/corpus/hub.manifest.json",
    log:
        "logs/tinystories/corpus/download_stories.log",
    params:
        hub=lookup(dpath="studies/tinystories/corpus/hub", within=config, default=None),
        code_version=CODE_VERSION["download_stories"],
    retries: 3
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/download_stories.py"


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
        code_version=CODE_VERSION["unpack_stories"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/unpack_stories.py"


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
        vocab=lookup(dpath="studies/tinystories/vocab", within=config, default=None),
        code_version=CODE_VERSION["train_vocab"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_vocab.py"


rule pretokenize:
    input:
        shards="results/tinystories/corpus/shards",
        tokenizer=TS_TOKENIZER,
    output:
        shards=directory("results/tinystories/tokens/{spec}/shards"),
        meta="results/tinystories/tokens/{spec}/meta.json",
        manifest="results/tinystories/tokens/{spec}/manifest.json",
    log:
        "logs/tinystories/tokens/{spec}/pretokenize.log",
    benchmark:
        "benchmarks/tinystories/tokens/{spec}/pretokenize.tsv"
    params:
        spec=study_input("tinystories", "spec_params"),
        pretokenize=lookup(
            dpath="studies/tinystories/pretokenize", within=config, default=None
        ),
        code_version=CODE_VERSION["pretokenize"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/pretokenize.py"


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
        stage=lookup(dpath="studies/tinystories/pretrain", within=config, default=None),
        model=lookup(dpath="studies/tinystories/model", within=config, default=None),
        settings=study_input("tinystories", "training_settings"),
        runtime=lookup(dpath="runtime", within=config),
        scratch="results/tinystories/pretrain/{base}/.scratch/pretrain_story_model",
        code_version=CODE_VERSION["pretrain_story_model"],
    priority: 30
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_story_model.py"


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
        stage=lookup(dpath="studies/tinystories/deletion", within=config, default=None),
        learning_rate="{lr}",
        seed="{seed}",
        settings=study_input("tinystories", "training_settings"),
        runtime=lookup(dpath="runtime", within=config),
        scratch="results/tinystories/delete/{protocol}/lr{lr}/seed{seed}/.scratch/delete_feature",
        code_version=CODE_VERSION["delete_feature"],
    priority: 20
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_story_model.py"


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
        stage=lookup(dpath="studies/tinystories/recovery", within=config, default=None),
        steps=TS_STEPS,
        seed="{seed}",
        settings=study_input("tinystories", "training_settings"),
        runtime=lookup(dpath="runtime", within=config),
        scratch="results/tinystories/recover/{source}/seed{seed}/.scratch/recover_feature",
        code_version=CODE_VERSION["recover_feature"],
    priority: 20
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_story_model.py"


rule evaluate_story_model:
    input:
        model="results/tinystories/{run}/model",
        shards="results/tinystories/corpus/shards",
        tokenizer=TS_TOKENIZER,
        eval_sets=study_input("tinystories", "eval_token_dirs"),
        judge=study_input("tinystories", "judge_inputs"),
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
        feature=lookup(dpath="studies/tinystories/feature", within=config, default=None),
        evaluation=lookup(
            dpath="studies/tinystories/evaluation", within=config, default=None
        ),
        probes=lookup(dpath="studies/tinystories/probes", within=config, default=None),
        block_size=lookup(
            dpath="studies/tinystories/block_size", within=config, default=None
        ),
        eval_sets=study_input("tinystories", "eval_sets"),
        instruction_subset=study_input("tinystories", "prompt_subset"),
        judge=study_input("tinystories", "judge"),
        runtime=lookup(dpath="runtime", within=config),
        code_version=CODE_VERSION["evaluate_story_model"],
    wildcard_constraints:
        run=TS_WILDCARDS["run"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/evaluate_story_model.py"


rule evaluate_recovery:
    input:
        checkpoints=study_input("tinystories", "recovery_checkpoints"),
        shards="results/tinystories/corpus/shards",
        tokenizer=TS_TOKENIZER,
        eval_sets=study_input("tinystories", "eval_token_dirs"),
        judge=study_input("tinystories", "judge_inputs"),
    output:
        evaluation="results/tinystories/recover/{source}/seed{seed}/recovery.json",
        generations="results/tinystories/recover/{source}/seed{seed}/generations.jsonl",
        manifest="results/tinystories/recover/{source}/seed{seed}/recovery.manifest.json",
    log:
        "logs/tinystories/recover/{source}/seed{seed}/evaluate_recovery.log",
    benchmark:
        "benchmarks/tinystories/recover/{source}/seed{seed}/evaluate_recovery.tsv"
    params:
        feature=lookup(dpath="studies/tinystories/feature", within=config, default=None),
        evaluation=lookup(
            dpath="studies/tinystories/evaluation", within=config, default=None
        ),
        block_size=lookup(
            dpath="studies/tinystories/block_size", within=config, default=None
        ),
        eval_sets=study_input("tinystories", "eval_sets"),
        instruction_subset=study_input("tinystories", "prompt_subset"),
        judge=study_input("tinystories", "judge"),
        steps=TS_STEPS,
        runtime=lookup(dpath="runtime", within=config),
        code_version=CODE_VERSION["evaluate_recovery"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/evaluate_recovery.py"


rule summarize_tinystories:
    localrule: True
    input:
        evals=study_input("tinystories", "model_evals"),
        probes=study_input("tinystories", "model_probes"),
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
        layout=study_input("tinystories", "summary_layout"),
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
        feature=lookup(dpath="studies/tinystories/feature", within=config, default=None),
        code_version=CODE_VERSION["plot_tinystories"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_tinystories.py"
