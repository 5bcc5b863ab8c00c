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


# ---- politune ----
#   results/politune/plots/{axes,trajectory,items,preference}.{svg,csv}   plot_politune
#   results/politune/plots/judge.{svg,csv}                                plot_politune_judge


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
        code_version=CODE_VERSION["plot_politune_judge"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_politune_judge.py"
