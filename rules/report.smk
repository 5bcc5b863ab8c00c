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


# ---- d3m ----
#   results/d3m/{world}/plots/{wga_vs_k,accuracy_vs_k}.{svg,csv}       plot_d3m_counterfactual
#   results/d3m/{world}/plots/{score_heatmap,alignment_cells,top_harmful,alignment_scatter}.svg
#                                                                      plot_d3m_attribution


rule plot_d3m_counterfactual:
    localrule: True
    input:
        summary="results/d3m/{world}/summary.csv",
        selection="results/d3m/{world}/selection.json",
    output:
        svg=report(
            "results/d3m/{world}/plots/{curve}.svg",
            caption="../workflow/report/d3m_counterfactual.rst",
            category="d3m",
            subcategory="{world}: counterfactual retraining",
            labels={"world": "{world}", "figure": "{curve}"},
        ),
        csv="results/d3m/{world}/plots/{curve}.csv",
        manifest="results/d3m/{world}/plots/{curve}.manifest.json",
    log:
        "logs/d3m/{world}/plots/{curve}/plot_d3m_counterfactual.log",
    params:
        metrics=study_input("d3m", "curve_metrics"),
        code_version=CODE_VERSION["plot_d3m_counterfactual"],
    wildcard_constraints:
        world=D3M_WORLD,
        curve=alias_regex(D3M.CURVES),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_d3m_counterfactual.py"


rule plot_d3m_attribution:
    localrule: True
    input:
        unpack(study_input("d3m", "attribution_inputs")),
    output:
        heatmap=report(
            "results/d3m/{world}/plots/score_heatmap.svg",
            caption="../workflow/report/d3m_score_heatmap.rst",
            category="d3m",
            subcategory="{world}: attribution",
            labels={"world": "{world}", "figure": "score heatmap"},
        ),
        cells=report(
            "results/d3m/{world}/plots/alignment_cells.svg",
            caption="../workflow/report/d3m_alignment_cells.rst",
            category="d3m",
            subcategory="{world}: attribution",
            labels={"world": "{world}", "figure": "alignment by cell"},
        ),
        top=report(
            "results/d3m/{world}/plots/top_harmful.svg",
            caption="../workflow/report/d3m_top_harmful.rst",
            category="d3m",
            subcategory="{world}: attribution",
            labels={"world": "{world}", "figure": "most harmful examples"},
        ),
        scatter=report(
            "results/d3m/{world}/plots/alignment_scatter.svg",
            caption="../workflow/report/d3m_alignment_scatter.rst",
            category="d3m",
            subcategory="{world}: attribution",
            labels={"world": "{world}", "figure": "alignment scatter"},
        ),
        csvs=multiext(
            "results/d3m/{world}/plots/",
            "score_heatmap.csv",
            "alignment_cells.csv",
            "top_harmful.csv",
            "alignment_scatter.csv",
        ),
        manifest="results/d3m/{world}/plots/attribution.manifest.json",
    log:
        "logs/d3m/{world}/plots/plot_d3m_attribution.log",
    params:
        methods=study_input("d3m", "attribution_names"),
        pair=study_input("d3m", "scatter_pair"),
        query_split=lookup(dpath="studies/d3m/query_split", within=config, default=None),
        top_n=lookup(
            dpath="studies/d3m/report/top_examples", within=config, default=None
        ),
        code_version=CODE_VERSION["plot_d3m_attribution"],
    wildcard_constraints:
        world=D3M_WORLD,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_d3m_attribution.py"
