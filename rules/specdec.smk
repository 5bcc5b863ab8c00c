# Study "specdec" (seed 002, ../shared/specs/specdec.md): group disparity in
# speculative-decoding acceptance, KL between main model and assistant during
# fine-tuning, toxicity of the generations. Wildcards: role (main | assistant),
# condition (a key of studies.specdec.conditions), view (clean_binary | legacy_all),
# k (draft length), n (max new tokens).
#   results/specdec/templates/templates.parquet                   prepare_specdec_templates
#   results/specdec/finetune/{role}/model|epochs|milestones/      finetune_specdec_model
#   results/specdec/finetune/{role}/.scratch/                     undeclared resumable state
#   results/specdec/kl/{condition}.parquet                        measure_specdec_kl
#   results/specdec/kl/curve.csv                                  curve_specdec_kl
#   results/specdec/decode/{condition}/{view}/k{k}_n{n}.parquet   measure_specdec_acceptance
#   results/specdec/toxicity/{view}/n{n}/                         score_specdec_toxicity
#   results/specdec/stats/{view}/k{k}_n{n}/*.csv                  summarize_specdec_disparity
#   results/specdec/sample/{condition}/{view}/k{k}_n{n}.parquet   sample_specdec_acceptance
#   results/specdec/sample/{view}/k{k}_n{n}/acceptance.csv        summarize_specdec_sampling
#   results/specdec/plots/...                                     rules/report.smk

from biasdrift.specdec import workflow as specdec_workflow  # noqa: E402

SPECDEC_WILDCARDS = specdec_workflow.wildcard_patterns(config)


rule prepare_specdec_templates:
    localrule: True
    input:
        sets=study_input("specdec", "template_files"),
    output:
        templates=ensure("results/specdec/templates/templates.parquet", non_empty=True),
        manifest="results/specdec/templates/manifest.json",
    log:
        "logs/specdec/templates/prepare_specdec_templates.log",
    params:
        sets=study_input("specdec", "template_sets"),
        templates=study_input("specdec", "template_settings"),
        code_version=CODE_VERSION["prepare_specdec_templates"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/prepare_specdec_templates.py"


rule finetune_specdec_model:
    input:
        model=study_input("specdec", "role_model_inputs"),
        corpus=study_input("specdec", "finetune_corpus"),
        templates="results/specdec/templates/templates.parquet",
    output:
        model=directory("results/specdec/finetune/{role}/model"),
        epochs=directory("results/specdec/finetune/{role}/epochs"),
        milestones=directory("results/specdec/finetune/{role}/milestones"),
        metrics=ensure(
            "results/specdec/finetune/{role}/train_metrics.json", non_empty=True
        ),
        manifest="results/specdec/finetune/{role}/manifest.json",
    log:
        "logs/specdec/finetune/{role}/finetune_specdec_model.log",
    benchmark:
        "benchmarks/specdec/finetune/{role}/finetune_specdec_model.tsv"
    params:
        model=study_input("specdec", "role_model_ref"),
        data=lookup(dpath="studies/specdec/finetune_data", within=config, default=None),
        train=lookup(dpath="studies/specdec/finetune", within=config, default=None),
        milestones=lookup(
            dpath="studies/specdec/milestones", within=config, default=None
        ),
        seed=lookup(dpath="studies/specdec/seed", within=config, default=None),
        runtime=lookup(dpath="runtime", within=config),
        scratch="results/specdec/finetune/{role}/.scratch/finetune_specdec_model",
        code_version=CODE_VERSION["finetune_specdec_model"],
    wildcard_constraints:
        role=SPECDEC_WILDCARDS["role"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/finetune_specdec_model.py"


rule measure_specdec_kl:
    input:
        templates="results/specdec/templates/templates.parquet",
        models=study_input("specdec", "condition_inputs"),
    output:
        kl=ensure("results/specdec/kl/{condition}.parquet", non_empty=True),
        manifest="results/specdec/kl/{condition}.manifest.json",
    log:
        "logs/specdec/kl/{condition}/measure_specdec_kl.log",
    benchmark:
        "benchmarks/specdec/kl/{condition}/measure_specdec_kl.tsv"
    params:
        pair=study_input("specdec", "condition_pair"),
        runtime=lookup(dpath="runtime", within=config),
        code_version=CODE_VERSION["measure_specdec_kl"],
    wildcard_constraints:
        condition=SPECDEC_WILDCARDS["condition"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/measure_specdec_kl.py"


rule curve_specdec_kl:
    input:
        main="results/specdec/finetune/main/milestones",
        assistant="results/specdec/finetune/assistant/milestones",
        templates="results/specdec/templates/templates.parquet",
    output:
        curve=ensure("results/specdec/kl/curve.csv", non_empty=True),
        manifest="results/specdec/kl/curve.manifest.json",
    log:
        "logs/specdec/kl/curve_specdec_kl.log",
    benchmark:
        "benchmarks/specdec/kl/curve_specdec_kl.tsv"
    params:
        views=lookup(dpath="studies/specdec/views", within=config, default=None),
        stats=lookup(dpath="studies/specdec/stats", within=config, default=None),
        code_version=CODE_VERSION["curve_specdec_kl"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/curve_specdec_kl.py"


rule measure_specdec_acceptance:
    input:
        templates="results/specdec/templates/templates.parquet",
        models=study_input("specdec", "condition_inputs"),
    output:
        decoded=ensure(
            "results/specdec/decode/{condition}/{view}/k{k}_n{n}.parquet",
            non_empty=True,
        ),
        manifest="results/specdec/decode/{condition}/{view}/k{k}_n{n}.manifest.json",
    log:
        "logs/specdec/decode/{condition}/{view}/k{k}_n{n}/measure_specdec_acceptance.log",
    benchmark:
        "benchmarks/specdec/decode/{condition}/{view}/k{k}_n{n}/measure_specdec_acceptance.tsv"
    params:
        pair=study_input("specdec", "condition_pair"),
        decode=study_input("specdec", "decode_settings"),
        runtime=lookup(dpath="runtime", within=config),
        code_version=CODE_VERSION["measure_specdec_acceptance"],
    wildcard_constraints:
        condition=SPECDEC_WILDCARDS["condition"],
        view=SPECDEC_WILDCARDS["view"],
        k=r"\d+",
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/measure_specdec_acceptance.py"


rule score_specdec_toxicity:
    input:
        study_input("specdec", "toxicity_inputs"),
    output:
        scores=ensure(
            "results/specdec/toxicity/{view}/n{n}/scores.parquet", non_empty=True
        ),
        summary="results/specdec/toxicity/{view}/n{n}/summary.csv",
        transitions="results/specdec/toxicity/{view}/n{n}/transitions.csv",
        manifest="results/specdec/toxicity/{view}/n{n}/manifest.json",
    log:
        "logs/specdec/toxicity/{view}/n{n}/score_specdec_toxicity.log",
    benchmark:
        "benchmarks/specdec/toxicity/{view}/n{n}/score_specdec_toxicity.tsv"
    params:
        decoded=study_input("specdec", "toxicity_decode_map"),
        pairs=study_input("specdec", "toxicity_pairs"),
        settings=study_input("specdec", "toxicity_settings"),
        runtime=lookup(dpath="runtime", within=config),
        code_version=CODE_VERSION["score_specdec_toxicity"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/score_specdec_toxicity.py"


rule summarize_specdec_disparity:
    localrule: True
    input:
        decoded=study_input("specdec", "decode_inputs"),
        kl=study_input("specdec", "kl_inputs"),
    output:
        group_summary="results/specdec/stats/{view}/k{k}_n{n}/group_summary.csv",
        identity_means="results/specdec/stats/{view}/k{k}_n{n}/identity_means.csv",
        disparity="results/specdec/stats/{view}/k{k}_n{n}/disparity.csv",
        did="results/specdec/stats/{view}/k{k}_n{n}/did.csv",
        spread="results/specdec/stats/{view}/k{k}_n{n}/spread.csv",
        points="results/specdec/stats/{view}/k{k}_n{n}/per_template.parquet",
        manifest="results/specdec/stats/{view}/k{k}_n{n}/manifest.json",
    log:
        "logs/specdec/stats/{view}/k{k}_n{n}/summarize_specdec_disparity.log",
    params:
        decoded=study_input("specdec", "decode_map"),
        kl=study_input("specdec", "kl_map"),
        settings=study_input("specdec", "stats_settings"),
        code_version=CODE_VERSION["summarize_specdec_disparity"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        k=r"\d+",
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_specdec_disparity.py"


rule sample_specdec_acceptance:
    input:
        templates="results/specdec/templates/templates.parquet",
        models=study_input("specdec", "condition_inputs"),
    output:
        sampled=ensure(
            "results/specdec/sample/{condition}/{view}/k{k}_n{n}.parquet",
            non_empty=True,
        ),
        manifest="results/specdec/sample/{condition}/{view}/k{k}_n{n}.manifest.json",
    log:
        "logs/specdec/sample/{condition}/{view}/k{k}_n{n}/sample_specdec_acceptance.log",
    benchmark:
        "benchmarks/specdec/sample/{condition}/{view}/k{k}_n{n}/sample_specdec_acceptance.tsv"
    params:
        pair=study_input("specdec", "condition_pair"),
        sampling=study_input("specdec", "sampling_settings"),
        runtime=lookup(dpath="runtime", within=config),
        code_version=CODE_VERSION["sample_specdec_acceptance"],
    wildcard_constraints:
        condition=SPECDEC_WILDCARDS["condition"],
        view=SPECDEC_WILDCARDS["view"],
        k=r"\d+",
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/sample_specdec_acceptance.py"


rule summarize_specdec_sampling:
    localrule: True
    input:
        sampled=study_input("specdec", "sample_inputs"),
    output:
        acceptance="results/specdec/sample/{view}/k{k}_n{n}/acceptance.csv",
        manifest="results/specdec/sample/{view}/k{k}_n{n}/manifest.json",
    log:
        "logs/specdec/sample/{view}/k{k}_n{n}/summarize_specdec_sampling.log",
    params:
        sampled=study_input("specdec", "sample_map"),
        settings=study_input("specdec", "sampling_summary_settings"),
        code_version=CODE_VERSION["summarize_specdec_sampling"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        k=r"\d+",
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_specdec_sampling.py"
