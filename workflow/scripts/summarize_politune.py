"""Rule summarize_politune: scores with intervals, shifts against the base, checkpoint choice."""

from biasdrift.politune.summary import TABLES, summarize
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        out = {k: smk.output[k] for k in ("summary", *TABLES)}
        record.update(summarize(smk.params.layout, out))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
