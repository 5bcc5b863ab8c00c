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


# ---- circuits ----
#   results/circuits/plots/bias_shift.{svg,csv}            plot_circuits_bias
#   results/circuits/plots/comparisons.{svg,csv}           plot_circuits_comparisons
#   results/circuits/plots/{stability,layerwise}_{model}.{svg,csv}  plot_circuits_stability
#   results/circuits/plots/{ablation,exact_check}.{svg,csv}         plot_circuits_ablation


rule plot_circuits_bias:
    localrule: True
    input:
        summary="results/circuits/bias_summary.csv",
    output:
        svg=report(
            "results/circuits/plots/bias_shift.svg",
            caption="../workflow/report/circuits_bias_shift.rst",
            category="Circuits",
            subcategory="Bias",
            labels={"figure": "bias by group, before and after fine-tuning"},
        ),
        csv="results/circuits/plots/bias_shift.csv",
        manifest="results/circuits/plots/bias_shift.manifest.json",
    log:
        "logs/circuits/plots/plot_circuits_bias.log",
    params:
        code_version=CODE_VERSION["plot_circuits_bias"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_circuits_bias.py"


rule plot_circuits_comparisons:
    localrule: True
    input:
        comparisons=study_input("circuits", "comparison_jsons"),
    output:
        svg=report(
            "results/circuits/plots/comparisons.svg",
            caption="../workflow/report/circuits_comparisons.rst",
            category="Circuits",
            subcategory="Fine-tuning",
            labels={"figure": "top-edge overlap, base vs fine-tuned"},
        ),
        csv="results/circuits/plots/comparisons.csv",
        manifest="results/circuits/plots/comparisons.manifest.json",
    log:
        "logs/circuits/plots/plot_circuits_comparisons.log",
    params:
        code_version=CODE_VERSION["plot_circuits_comparisons"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_circuits_comparisons.py"


rule plot_circuits_stability:
    localrule: True
    input:
        matrix="results/circuits/{model}/stability/overlap_matrix.csv",
        layerwise="results/circuits/{model}/stability/layerwise.csv",
    output:
        heatmap=report(
            "results/circuits/plots/stability_{model}.svg",
            caption="../workflow/report/circuits_stability.rst",
            category="Circuits",
            subcategory="Stability",
            labels={"model": "{model}", "figure": "overlap matrix"},
        ),
        heatmap_csv="results/circuits/plots/stability_{model}.csv",
        layers=report(
            "results/circuits/plots/layerwise_{model}.svg",
            caption="../workflow/report/circuits_layerwise.rst",
            category="Circuits",
            subcategory="Stability",
            labels={"model": "{model}", "figure": "layer distribution"},
        ),
        layers_csv="results/circuits/plots/layerwise_{model}.csv",
        manifest="results/circuits/plots/stability_{model}.manifest.json",
    log:
        "logs/circuits/plots/plot_circuits_stability_{model}.log",
    params:
        code_version=CODE_VERSION["plot_circuits_stability"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_circuits_stability.py"


rule plot_circuits_ablation:
    localrule: True
    input:
        ablations=study_input("circuits", "ablation_csvs"),
    output:
        svg=report(
            "results/circuits/plots/ablation.svg",
            caption="../workflow/report/circuits_ablation.rst",
            category="Circuits",
            subcategory="Faithfulness",
            labels={"figure": "ablation curve"},
        ),
        csv="results/circuits/plots/ablation.csv",
        exact_svg=report(
            "results/circuits/plots/exact_check.svg",
            caption="../workflow/report/circuits_exact_check.rst",
            category="Circuits",
            subcategory="Faithfulness",
            labels={"figure": "EAP vs exact patching"},
        ),
        exact_csv="results/circuits/plots/exact_check.csv",
        manifest="results/circuits/plots/ablation.manifest.json",
    log:
        "logs/circuits/plots/plot_circuits_ablation.log",
    params:
        code_version=CODE_VERSION["plot_circuits_ablation"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_circuits_ablation.py"
