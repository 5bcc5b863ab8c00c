# Plots for the Snakemake HTML report (snakemake --report results/report.html).
# Every figure goes through report() with a caption and a category, and has a CSV of
# the plotted numbers beside it.
#   results/models/plots/pretrain_loss.{svg,csv}     plot_pretraining


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
        models=BUILD_MODELS,
        code_version=CODE_VERSION["plot_pretraining"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_pretraining.py"


# ---- tinystories ----
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


# ---- specdec ----
#   results/specdec/plots/{view}/k{k}_n{n}/{share_by_category,share_by_identity,disparity_forest,kl_vs_share}.{svg,csv}
#   results/specdec/plots/kl_curve.{svg,csv}
#   results/specdec/plots/{view}/n{n}/toxicity.{svg,csv}


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
        settings=study_input("specdec", "stats_settings"),
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
        reference=lookup(
            dpath="studies/specdec/reference_condition", within=config, default=None
        ),
        code_version=CODE_VERSION["plot_specdec_toxicity"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_specdec_toxicity.py"
