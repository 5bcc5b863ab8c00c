"""Rules score_d3m_trak and score_d3m_if: one attribution score matrix (n_train, n_query)."""

from biasdrift.d3m.attribution import InfluenceConfig, TrakConfig
from biasdrift.d3m.classifier import set_threads
from biasdrift.d3m.scoring import score_world
from biasdrift.d3m.workflow import trak_where
from biasdrift.runtime import choose_device, job_for
from biasdrift.training import config_from_dict


def main(smk) -> None:
    method, runtime = smk.wildcards.method, smk.params.runtime
    trak = smk.rule == "score_d3m_trak"
    seed = smk.params.trak["projector_seed"] if trak else smk.params.score_seed
    with job_for(smk, seed=seed, deterministic=runtime["deterministic"]) as record:
        set_threads(smk.threads)
        if trak:
            spec = dict(smk.params.trak)
            epochs = spec.pop("checkpoints")["epochs"]
            cfg = config_from_dict(TrakConfig, spec, f"studies.d3m.trak.{method}")
        else:
            epochs = []
            cfg = config_from_dict(InfluenceConfig, smk.params.influence, f"studies.d3m.influence.{method}")
        record.update(
            score_world(
                method="trak" if trak else "if",
                cfg=cfg,
                model_dirs=list(smk.input.models),
                epochs=epochs,
                data_path=smk.input.data,
                query_split=smk.params.query_split,
                max_length=smk.params.max_length,
                scores_path=smk.output.scores,
                uids_path=smk.output.uids,
                work_dir=smk.params.work,
                device=choose_device(runtime["device"]).type,
                seed=seed,
                where=trak_where(smk.wildcards.world, method) if trak else f"studies.d3m.influence.{method}",
            )
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
