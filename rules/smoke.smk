# Smoke-tier fixtures (config/smoke/, biasdrift.smoke): only a smoke config's path:
# aliases point here, so these rules never run in the demo or paper tier.
#   results/smoke/models/{fixture}/       build_smoke_model (random weights, real hub config)
#   results/smoke/datasets/{fixture}      build_smoke_dataset (a file in a hub dataset's format)


rule build_smoke_model:
    output:
        model=directory("results/smoke/models/{fixture}"),
        manifest="results/smoke/models/{fixture}.manifest.json",
    log:
        "logs/smoke/models/{fixture}/build_smoke_model.log",
    benchmark:
        "benchmarks/smoke/models/{fixture}/build_smoke_model.tsv"
    params:
        job=stage_params("smoke", "build_smoke_model"),
        code_version=CODE_VERSION["build_smoke_model"],
    wildcard_constraints:
        fixture=alias_regex(SMOKE_FIXTURES["models"]),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/build_smoke_model.py"


rule build_smoke_dataset:
    output:
        data="results/smoke/datasets/{fixture}",
        manifest="results/smoke/datasets/{fixture}.manifest.json",
    log:
        "logs/smoke/datasets/{fixture}/build_smoke_dataset.log",
    params:
        job=stage_params("smoke", "build_smoke_dataset"),
        code_version=CODE_VERSION["build_smoke_dataset"],
    wildcard_constraints:
        fixture=alias_regex(SMOKE_FIXTURES["datasets"]),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/build_smoke_dataset.py"
