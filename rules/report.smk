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
