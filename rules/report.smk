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
        reference=lookup(
            dpath="studies/specdec/reference_condition", within=config, default=None
        ),
        code_version=CODE_VERSION["plot_specdec_sampling"],
    wildcard_constraints:
        view=SPECDEC_WILDCARDS["view"],
        k=r"\d+",
        n=r"\d+",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_specdec_sampling.py"


# ---- d3m ----
#   results/d3m/{world}/plots/{wga_vs_k,accuracy_vs_k}.{svg,csv}       plot_d3m_counterfactual
#   results/d3m/{world}/plots/{score_heatmap,alignment_cells,top_harmful,alignment_scatter}.svg
#                                                                      plot_d3m_attribution
#   results/d3m/sweep/plots/sweep.{svg,csv}                            plot_d3m_sweep


rule plot_d3m_sweep:
    localrule: True
    input:
        csv="results/d3m/sweep/sweep.csv",
    output:
        svg=report(
            "results/d3m/sweep/plots/sweep.svg",
            caption="../workflow/report/d3m_sweep.rst",
            category="d3m",
            subcategory="sweep over worlds",
            labels={"figure": "D3M across worlds"},
        ),
        csv="results/d3m/sweep/plots/sweep.csv",
        manifest="results/d3m/sweep/plots/sweep.manifest.json",
    log:
        "logs/d3m/sweep/plot_d3m_sweep.log",
    params:
        code_version=CODE_VERSION["plot_d3m_sweep"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_d3m_sweep.py"


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


# ---- politune ----
#   results/politune/plots/{axes,trajectory,items,preference}.{svg,csv}   plot_politune
#   results/politune/plots/judge.{svg,csv}                                plot_politune_judge
#   results/politune/plots/compass.{svg,csv}                              plot_politune_compass


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


rule plot_politune_compass:
    localrule: True
    input:
        summary="results/politune/summary.json",
        compass="results/politune/compass.csv",
    output:
        svg=report(
            "results/politune/plots/compass.svg",
            caption="../workflow/report/politune_compass.rst",
            category="politune",
            subcategory="Statement probe",
            labels={"figure": "Political Compass"},
        ),
        csv="results/politune/plots/compass.csv",
        manifest="results/politune/plots/compass.manifest.json",
    log:
        "logs/politune/plots/plot_politune_compass.log",
    params:
        code_version=CODE_VERSION["plot_politune_compass"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_politune_compass.py"
