# Study "circuits" (seed 000, ../shared/specs/circuits.md): bias prompts, group split,
# M1/M2 and gender metrics, edge attribution patching on every model, fine-tuning,
# comparison and stability. Logic: workflow/scripts/biasdrift/circuits/.
#   results/circuits/prompts/{bias}_{template}_{corruption}.csv            make_prompts
#   results/circuits/{model}/{ft}/bias/{corruption}.parquet                eval_bias
#   results/circuits/{model}/splits/{bias}_{template}_{corruption}_*.csv   split_demographic / split_gender
#   results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/
#       edge_scores.parquet top_edges.txt circuit.json results.txt|json    discover_circuit
#       ablation.csv faithfulness.csv exact_check.csv|json                 ablate_circuit
#   results/circuits/{model}/{ft}/model/ + train_metrics.json              finetune_circuits
#   results/circuits/{model}/{ft}/compare/*_finetuned_comparison.txt|json  compare_circuits
#   results/circuits/{model}/stability/                                    analyze_stability
#   results/circuits/bias_summary.csv|json                                 summarize_bias
#   results/circuits/{model}/{ft}/tasks/{task}/                           discover_task_circuit
# {ft} is "base" (the model as configured) or a key of studies.circuits.finetunes;
# {task} a key of studies.circuits.tasks (your own prompt pairs, a TSV).

from biasdrift.circuits import workflow as circuits_workflow  # noqa: E402

CIRCUITS_TASKS = circuits_workflow.task_pattern(config)


rule make_prompts:
    localrule: True
    input:
        groups=study_input("circuits", "group_file"),
    output:
        prompts="results/circuits/prompts/{bias}_{template}_{corruption}.csv",
        manifest="results/circuits/prompts/{bias}_{template}_{corruption}.manifest.json",
    log:
        "logs/circuits/prompts/{bias}_{template}_{corruption}.log",
    params:
        job=stage_params("circuits", "make_prompts"),
        code_version=CODE_VERSION["make_prompts"],
    wildcard_constraints:
        bias="demographic|gender",
        template="dss1|dss2|gss1|gss2",
        corruption="c1|c2",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_make_prompts.py"


rule eval_bias:
    input:
        model=study_input("circuits", "model_inputs"),
        prompts=study_input("circuits", "eval_prompt_files"),
        labels=study_input("circuits", "label_inputs"),
    output:
        table="results/circuits/{model}/{ft}/bias/{corruption}.parquet",
        summary="results/circuits/{model}/{ft}/bias/{corruption}.json",
        manifest="results/circuits/{model}/{ft}/bias/{corruption}.manifest.json",
    log:
        "logs/circuits/{model}/{ft}/bias/{corruption}.log",
    benchmark:
        "benchmarks/circuits/{model}/{ft}/bias/{corruption}.tsv"
    params:
        job=stage_params("circuits", "eval_bias"),
        code_version=CODE_VERSION["eval_bias"],
    wildcard_constraints:
        ft="[a-z0-9][a-z0-9_-]*",
        corruption="c1|c2",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_eval_bias.py"


rule split_demographic:
    localrule: True
    input:
        table="results/circuits/{model}/base/bias/{corruption}.parquet",
    output:
        pos="results/circuits/{model}/splits/demographic_{template}_{corruption}_pos.csv",
        neg="results/circuits/{model}/splits/demographic_{template}_{corruption}_neg.csv",
        stats="results/circuits/{model}/splits/demographic_{template}_{corruption}_stats.csv",
        manifest="results/circuits/{model}/splits/demographic_{template}_{corruption}.manifest.json",
    log:
        "logs/circuits/{model}/splits/demographic_{template}_{corruption}.log",
    params:
        job=stage_params("circuits", "split_demographic"),
        code_version=CODE_VERSION["split_demographic"],
    wildcard_constraints:
        template="dss1|dss2",
        corruption="c1|c2",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_split_demographic.py"


rule split_gender:
    localrule: True
    input:
        table="results/circuits/{model}/base/bias/{corruption}.parquet",
    output:
        mb="results/circuits/{model}/splits/gender_{template}_{corruption}_mb.csv",
        fb="results/circuits/{model}/splits/gender_{template}_{corruption}_fb.csv",
        stats="results/circuits/{model}/splits/gender_{template}_{corruption}_stats.csv",
        manifest="results/circuits/{model}/splits/gender_{template}_{corruption}.manifest.json",
    log:
        "logs/circuits/{model}/splits/gender_{template}_{corruption}.log",
    params:
        job=stage_params("circuits", "split_gender"),
        code_version=CODE_VERSION["split_gender"],
    wildcard_constraints:
        template="gss1|gss2",
        corruption="c1|c2",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_split_gender.py"


rule discover_circuit:
    input:
        model=study_input("circuits", "model_inputs"),
        prompts=study_input("circuits", "eap_prompts"),
        labels=study_input("circuits", "label_inputs"),
    output:
        scores="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/edge_scores.parquet",
        top_edges="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/top_edges.txt",
        circuit="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/circuit.json",
        results="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/results.txt",
        results_json="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/results.json",
        manifest="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/manifest.json",
    log:
        "logs/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/discover_circuit.log",
    benchmark:
        "benchmarks/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/discover_circuit.tsv"
    params:
        job=stage_params("circuits", "discover_circuit"),
        code_version=CODE_VERSION["discover_circuit"],
    wildcard_constraints:
        ft="[a-z0-9][a-z0-9_-]*",
        bias="demographic|gender",
        template="dss1|dss2|gss1|gss2",
        corruption="c1|c2",
        metric="m1|m2|g1|g2",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_discover_circuit.py"


rule ablate_circuit:
    input:
        model=study_input("circuits", "model_inputs"),
        scores="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/edge_scores.parquet",
        prompts=study_input("circuits", "eap_prompts"),
        labels=study_input("circuits", "label_inputs"),
    output:
        ablation="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/ablation.csv",
        faithfulness="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/faithfulness.csv",
        exact="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/exact_check.csv",
        exact_json="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/exact_check.json",
        manifest="results/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/ablation.manifest.json",
    log:
        "logs/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/ablate_circuit.log",
    benchmark:
        "benchmarks/circuits/{model}/{ft}/eap/{bias}_{template}_{corruption}_{metric}/ablate_circuit.tsv"
    params:
        job=stage_params("circuits", "ablate_circuit"),
        code_version=CODE_VERSION["ablate_circuit"],
    wildcard_constraints:
        ft="[a-z0-9][a-z0-9_-]*",
        bias="demographic|gender",
        template="dss1|dss2|gss1|gss2",
        corruption="c1|c2",
        metric="m1|m2|g1|g2",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_ablate_circuit.py"


rule finetune_circuits:
    input:
        base_model=study_input("circuits", "base_model_inputs"),
        data=study_input("circuits", "finetune_inputs"),
    output:
        model=directory("results/circuits/{model}/{ft}/model"),
        metrics=ensure(
            "results/circuits/{model}/{ft}/train_metrics.json", non_empty=True
        ),
        manifest="results/circuits/{model}/{ft}/finetune.manifest.json",
    log:
        "logs/circuits/{model}/{ft}/finetune_circuits.log",
    benchmark:
        "benchmarks/circuits/{model}/{ft}/finetune_circuits.tsv"
    params:
        job=stage_params("circuits", "finetune_circuits"),
        code_version=CODE_VERSION["finetune_circuits"],
    wildcard_constraints:
        ft="(?!base/)[a-z0-9][a-z0-9_-]*",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/finetune_circuits.py"


rule compare_circuits:
    localrule: True
    input:
        unpack(study_input("circuits", "compare_inputs")),
    output:
        report="results/circuits/{model}/{ft}/compare/{bias}_{template}_{corruption}_{metric}_finetuned_comparison.txt",
        json="results/circuits/{model}/{ft}/compare/{bias}_{template}_{corruption}_{metric}_finetuned_comparison.json",
        manifest="results/circuits/{model}/{ft}/compare/{bias}_{template}_{corruption}_{metric}.manifest.json",
    log:
        "logs/circuits/{model}/{ft}/compare/{bias}_{template}_{corruption}_{metric}.log",
    params:
        job=stage_params("circuits", "compare_circuits"),
        code_version=CODE_VERSION["compare_circuits"],
    wildcard_constraints:
        ft="[a-z0-9][a-z0-9_-]*",
        bias="demographic|gender",
        template="dss1|dss2|gss1|gss2",
        corruption="c1|c2",
        metric="m1|m2|g1|g2",
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/compare_circuits.py"


rule analyze_stability:
    localrule: True
    input:
        scores=study_input("circuits", "stability_inputs"),
    output:
        matrix="results/circuits/{model}/stability/overlap_matrix.csv",
        grammatical="results/circuits/{model}/stability/grammatical_stability.txt",
        bias_type="results/circuits/{model}/stability/bias_type_stability.txt",
        layerwise="results/circuits/{model}/stability/layerwise.csv",
        manifest="results/circuits/{model}/stability/manifest.json",
    log:
        "logs/circuits/{model}/stability/analyze_stability.log",
    params:
        job=stage_params("circuits", "analyze_stability"),
        code_version=CODE_VERSION["analyze_stability"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_analyze_stability.py"


rule summarize_bias:
    localrule: True
    input:
        tables=study_input("circuits", "summary_inputs"),
    output:
        csv="results/circuits/bias_summary.csv",
        json="results/circuits/bias_summary.json",
        manifest="results/circuits/bias_summary.manifest.json",
    log:
        "logs/circuits/summarize_bias.log",
    params:
        job=stage_params("circuits", "summarize_bias"),
        code_version=CODE_VERSION["summarize_bias"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_summarize_bias.py"


rule discover_task_circuit:
    input:
        model=study_input("circuits", "model_inputs"),
        task=study_input("circuits", "task_file"),
    output:
        scores="results/circuits/{model}/{ft}/tasks/{task}/edge_scores.parquet",
        top_edges="results/circuits/{model}/{ft}/tasks/{task}/top_edges.txt",
        faithfulness="results/circuits/{model}/{ft}/tasks/{task}/faithfulness.csv",
        results_json="results/circuits/{model}/{ft}/tasks/{task}/results.json",
        manifest="results/circuits/{model}/{ft}/tasks/{task}/manifest.json",
    log:
        "logs/circuits/{model}/{ft}/tasks/{task}/discover_task_circuit.log",
    benchmark:
        "benchmarks/circuits/{model}/{ft}/tasks/{task}/discover_task_circuit.tsv"
    params:
        job=stage_params("circuits", "discover_task_circuit"),
        code_version=CODE_VERSION["discover_task_circuit"],
    wildcard_constraints:
        ft="[a-z0-9][a-z0-9_-]*",
        task=CIRCUITS_TASKS,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/circuits_discover_task_circuit.py"


# ---- plots (the HTML report: snakemake --report results/report.html)
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
        job=stage_params("circuits", "plot_circuits_bias"),
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
        job=stage_params("circuits", "plot_circuits_comparisons"),
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
        job=stage_params("circuits", "plot_circuits_stability"),
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
        job=stage_params("circuits", "plot_circuits_ablation"),
        code_version=CODE_VERSION["plot_circuits_ablation"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_circuits_ablation.py"
