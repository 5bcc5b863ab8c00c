# Datasets, tokenizers and models shared by the studies.
#   results/datasets/{dataset}/data.parquet      prepare_dataset (hub / local file / generated)
#   results/tokenizers/{tokenizer}/tokenizer/    train_tokenizer (save_pretrained)
#   results/models/{model}/model/                pretrain_lm (build aliases; save_pretrained)
#   results/models/{model}/.scratch/             undeclared resumable training state
#   results/models/{model}/download.json         download_model (hf_id aliases; HF cache)
#   results/models/plots/pretrain_loss.{svg,csv} plot_pretraining (the report's figure)


rule prepare_dataset:
    localrule: True
    input:
        files=get_dataset_inputs,
    output:
        data=ensure("results/datasets/{dataset}/data.parquet", non_empty=True),
        manifest="results/datasets/{dataset}/manifest.json",
    log:
        "logs/datasets/{dataset}/prepare_dataset.log",
    benchmark:
        "benchmarks/datasets/{dataset}/prepare_dataset.tsv"
    params:
        job=stage_params("models", "prepare_dataset"),
        code_version=CODE_VERSION["prepare_dataset"],
    retries: 3
    priority: 10
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/prepare_dataset.py"


rule train_tokenizer:
    input:
        data=get_tokenizer_corpus,
    output:
        tokenizer=directory("results/tokenizers/{tokenizer}/tokenizer"),
        manifest=ensure("results/tokenizers/{tokenizer}/manifest.json", non_empty=True),
    log:
        "logs/tokenizers/{tokenizer}/train_tokenizer.log",
    benchmark:
        "benchmarks/tokenizers/{tokenizer}/train_tokenizer.tsv"
    params:
        job=stage_params("models", "train_tokenizer"),
        code_version=CODE_VERSION["train_tokenizer"],
    priority: 10
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_tokenizer.py"


rule pretrain_lm:
    input:
        data=get_build_corpus,
        tokenizer=get_build_tokenizer,
    output:
        model=directory("results/models/{model}/model"),
        metrics=ensure("results/models/{model}/train_metrics.json", non_empty=True),
        manifest="results/models/{model}/manifest.json",
    log:
        "logs/models/{model}/pretrain_lm.log",
    benchmark:
        "benchmarks/models/{model}/pretrain_lm.tsv"
    params:
        job=stage_params("models", "pretrain_lm"),
        code_version=CODE_VERSION["pretrain_lm"],
    wildcard_constraints:
        model=alias_regex(BUILD_MODELS),
    priority: 10
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/pretrain_lm.py"


rule download_model:
    localrule: True
    output:
        marker=ensure("results/models/{model}/download.json", non_empty=True),
        manifest="results/models/{model}/download.manifest.json",
    log:
        "logs/models/{model}/download_model.log",
    params:
        job=stage_params("models", "download_model"),
        code_version=CODE_VERSION["download_model"],
    wildcard_constraints:
        model=alias_regex(HUB_MODELS),
    retries: 3
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/download_model.py"


rule plot_pretraining:
    localrule: True
    input:
        metrics=get_pretrain_metrics,
    output:
        svg=report(
            "results/models/plots/pretrain_loss.svg",
            caption="../workflow/report/pretrain_loss.rst",
            category="Models",
            subcategory="Pretraining",
            labels={"figure": "pretraining loss"},
        ),
        csv="results/models/plots/pretrain_loss.csv",
        manifest="results/models/plots/pretrain_loss.manifest.json",
    log:
        "logs/models/plots/plot_pretraining.log",
    params:
        job=stage_params("models", "plot_pretraining"),
        code_version=CODE_VERSION["plot_pretraining"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_pretraining.py"
