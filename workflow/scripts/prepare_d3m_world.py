"""Rule prepare_d3m_world: one d3m world (uid, text, label, group, cell, split) with per-cell counts."""

from biasdrift.d3m.data import prepare_world
from biasdrift.data import read_dataset
from biasdrift.runtime import atomic_path, job_for


def main(smk) -> None:
    world = smk.params.world
    where = f"studies.d3m.worlds.{smk.wildcards.world}"
    with job_for(smk, seed=world["seed"]) as record:
        frames = {name: read_dataset(path) for name, path in smk.input.items()}
        params = world.get(world["prepare"], {})  # the preparer's own section (none for table)
        frame, manifest = prepare_world(world["prepare"], frames, params, world["imbalance"], world["seed"], where)
        with atomic_path(smk.output.data) as tmp:
            frame.to_parquet(tmp, index=False)
        record.update(manifest)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
