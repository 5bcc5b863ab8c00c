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
#   results/specdec/plots/...                                     plot_specdec_* (below)

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
        job=stage_params("specdec", "prepare_specdec_templates"),
        code_version=CODE_VERSION["prepare_specdec_templates"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/prepare_specdec_templates.py"


rule finetune_specdec_model:
    input:
        base_model=study_input("specdec", "role_model_inputs"),
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
        job=stage_params("specdec", "finetune_specdec_model"),
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
        job=stage_params("specdec", "measure_specdec_kl"),
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
        job=stage_params("specdec", "curve_specdec_kl"),
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
        job=stage_params("specdec", "measure_specdec_acceptance"),
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
        files=study_input("specdec", "toxicity_inputs"),
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
        job=stage_params("specdec", "score_specdec_toxicity"),
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
        job=stage_params("specdec", "summarize_specdec_disparity"),
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
        job=stage_params("specdec", "sample_specdec_acceptance"),
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
        job=stage_params("specdec", "summarize_specdec_sampling"),
        code_version=CODE_VERSION["summarize_specdec_sampling"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        k=r"\d+",
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_specdec_sampling.py"


# ---- plots (the HTML report: snakemake --report results/report.html)
#   results/specdec/plots/{view}/k{k}_n{n}/{share_by_category,share_by_identity,disparity_forest,kl_vs_share}.{svg,csv}
#   results/specdec/plots/kl_curve.{svg,csv}
#   results/specdec/plots/{view}/n{n}/toxicity.{svg,csv}
#   results/specdec/plots/{view}/k{k}_n{n}/sampling.{svg,csv}


rule plot_specdec_disparity:
    localrule: True
    input:
        summary="results/specdec/stats/{view}/k{k}_n{n}/group_summary.csv",
        identity_means="results/specdec/stats/{view}/k{k}_n{n}/identity_means.csv",
        disparity="results/specdec/stats/{view}/k{k}_n{n}/disparity.csv",
        did="results/specdec/stats/{view}/k{k}_n{n}/did.csv",
        points="results/specdec/stats/{view}/k{k}_n{n}/per_template.parquet",
    output:
        share_by_category_svg=report(
            "results/specdec/plots/{view}/k{k}_n{n}/share_by_category.svg",
            caption="../workflow/report/specdec_share_by_category.rst",
            category="specdec",
            subcategory="Assistant share",
            labels={
                "figure": "share by category",
                "view": "{view}",
                "K": "{k}",
                "N": "{n}",
            },
        ),
        share_by_category_csv="results/specdec/plots/{view}/k{k}_n{n}/share_by_category.csv",
        share_by_identity_svg=report(
            "results/specdec/plots/{view}/k{k}_n{n}/share_by_identity.svg",
            caption="../workflow/report/specdec_share_by_identity.rst",
            category="specdec",
            subcategory="Assistant share",
            labels={
                "figure": "per-identity share",
                "view": "{view}",
                "K": "{k}",
                "N": "{n}",
            },
        ),
        share_by_identity_csv="results/specdec/plots/{view}/k{k}_n{n}/share_by_identity.csv",
        disparity_forest_svg=report(
            "results/specdec/plots/{view}/k{k}_n{n}/disparity_forest.svg",
            caption="../workflow/report/specdec_disparity_forest.rst",
            category="specdec",
            subcategory="Disparity",
            labels={
                "figure": "disparity forest",
                "view": "{view}",
                "K": "{k}",
                "N": "{n}",
            },
        ),
        disparity_forest_csv="results/specdec/plots/{view}/k{k}_n{n}/disparity_forest.csv",
        kl_vs_share_svg=report(
            "results/specdec/plots/{view}/k{k}_n{n}/kl_vs_share.svg",
            caption="../workflow/report/specdec_kl_vs_share.rst",
            category="specdec",
            subcategory="KL",
            labels={"figure": "KL vs share", "view": "{view}", "K": "{k}", "N": "{n}"},
        ),
        kl_vs_share_csv="results/specdec/plots/{view}/k{k}_n{n}/kl_vs_share.csv",
        manifest="results/specdec/plots/{view}/k{k}_n{n}/manifest.json",
    log:
        "logs/specdec/plots/{view}/k{k}_n{n}/plot_specdec_disparity.log",
    params:
        job=stage_params("specdec", "plot_specdec_disparity"),
        code_version=CODE_VERSION["plot_specdec_disparity"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        k=r"\d+",
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_specdec_disparity.py"


rule plot_specdec_kl_curve:
    localrule: True
    input:
        curve="results/specdec/kl/curve.csv",
    output:
        svg=report(
            "results/specdec/plots/kl_curve.svg",
            caption="../workflow/report/specdec_kl_curve.rst",
            category="specdec",
            subcategory="KL",
            labels={"figure": "KL over fine-tuning"},
        ),
        csv="results/specdec/plots/kl_curve.csv",
        manifest="results/specdec/plots/kl_curve.manifest.json",
    log:
        "logs/specdec/plots/plot_specdec_kl_curve.log",
    params:
        job=stage_params("specdec", "plot_specdec_kl_curve"),
        code_version=CODE_VERSION["plot_specdec_kl_curve"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_specdec_kl_curve.py"


rule plot_specdec_toxicity:
    localrule: True
    input:
        summary="results/specdec/toxicity/{view}/n{n}/summary.csv",
    output:
        svg=report(
            "results/specdec/plots/{view}/n{n}/toxicity.svg",
            caption="../workflow/report/specdec_toxicity.rst",
            category="specdec",
            subcategory="Toxicity",
            labels={"figure": "toxic rates", "view": "{view}", "N": "{n}"},
        ),
        csv="results/specdec/plots/{view}/n{n}/toxicity.csv",
        manifest="results/specdec/plots/{view}/n{n}/toxicity.manifest.json",
    log:
        "logs/specdec/plots/{view}/n{n}/plot_specdec_toxicity.log",
    params:
        job=stage_params("specdec", "plot_specdec_toxicity"),
        code_version=CODE_VERSION["plot_specdec_toxicity"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_specdec_toxicity.py"


rule plot_specdec_sampling:
    localrule: True
    input:
        acceptance="results/specdec/sample/{view}/k{k}_n{n}/acceptance.csv",
    output:
        svg=report(
            "results/specdec/plots/{view}/k{k}_n{n}/sampling.svg",
            caption="../workflow/report/specdec_sampling.rst",
            category="specdec",
            subcategory="Speculative sampling",
            labels={
                "figure": "acceptance vs 1 − TV",
                "view": "{view}",
                "K": "{k}",
                "N": "{n}",
            },
        ),
        csv="results/specdec/plots/{view}/k{k}_n{n}/sampling.csv",
        manifest="results/specdec/plots/{view}/k{k}_n{n}/sampling.manifest.json",
    log:
        "logs/specdec/plots/{view}/k{k}_n{n}/plot_specdec_sampling.log",
    params:
        job=stage_params("specdec", "plot_specdec_sampling"),
        code_version=CODE_VERSION["plot_specdec_sampling"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        k=r"\d+",
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_specdec_sampling.py"
