# The cross-study probe matrix (docs/matrix.md): every causal LM the enabled studies hold
# (their base aliases and fine-tunes) x every bias probe they define, one table and one
# heatmap. Runs when the config has a `matrix` key. Glue in biasdrift.matrix.workflow,
# registries in biasdrift.matrix.registry (each study's matrix_models / matrix_probes).
#   results/matrix/{row}/{probe}.json        score_matrix_cell (score + interval, change vs
#                                            base; or why the probe does not apply)
#   results/matrix/matrix.csv                summarize_matrix (every pair, applicable or not)
#   results/matrix/plots/matrix.svg|.csv     plot_matrix (in the report)

from biasdrift.matrix import workflow as MX  # noqa: E402, N812

MX_WILDCARDS = MX.wildcard_regexes(config)


rule score_matrix_cell:
    input:
        unpack(study_input("matrix", "cell_inputs")),
    output:
        cell="results/matrix/{row}/{probe}.json",
        manifest="results/matrix/{row}/{probe}.manifest.json",
    log:
        "logs/matrix/{row}/{probe}.log",
    benchmark:
        "benchmarks/matrix/{row}/{probe}.tsv"
    params:
        job=stage_params("matrix", "score_matrix_cell"),
        code_version=CODE_VERSION["score_matrix_cell"],
    wildcard_constraints:
        row=MX_WILDCARDS["row"],
        probe=MX_WILDCARDS["probe"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/score_matrix_cell.py"


rule summarize_matrix:
    localrule: True
    input:
        cells=study_input("matrix", "summary_inputs"),
    output:
        table="results/matrix/matrix.csv",
        manifest="results/matrix/matrix.manifest.json",
    log:
        "logs/matrix/summarize_matrix.log",
    params:
        job=stage_params("matrix", "summarize_matrix"),
        code_version=CODE_VERSION["summarize_matrix"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize_matrix.py"


rule plot_matrix:
    localrule: True
    input:
        table="results/matrix/matrix.csv",
    output:
        svg=report(
            "results/matrix/plots/matrix.svg",
            caption="../workflow/report/matrix.rst",
            category="Matrix",
            labels={"figure": "every fine-tune x every bias probe"},
        ),
        csv="results/matrix/plots/matrix.csv",
        manifest="results/matrix/plots/matrix.manifest.json",
    log:
        "logs/matrix/plots/plot_matrix.log",
    params:
        job=stage_params("matrix", "plot_matrix"),
        code_version=CODE_VERSION["plot_matrix"],
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/plot_matrix.py"
