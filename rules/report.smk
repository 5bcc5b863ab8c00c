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
