"""Rule plot_politune: axis scores, score trajectories, per-statement scores, held-out preferences."""

from biasdrift.politune.plots import plot_all
from biasdrift.runtime import job_for


def main(smk) -> None:
    with job_for(smk) as record:
        out = {k: v for k, v in smk.output.items() if k != "manifest"}
        record.update(plot_all(dict(smk.input.items()), out))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
