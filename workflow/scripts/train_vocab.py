"""Rule train_vocab: the SentencePiece BPE vocabulary (non-interactive)."""

from biasdrift.runtime import job_for
from biasdrift.tinystories.vocab import VocabConfig, train_vocab
from biasdrift.training import config_from_dict


def main(smk) -> None:
    with job_for(smk) as record:
        cfg = config_from_dict(VocabConfig, smk.params.vocab, "studies.tinystories.vocab")
        out = smk.output
        meta = train_vocab(smk.input.shards, cfg, out.model, out.vocab, out.meta, threads=smk.threads)
        record.update({k: meta[k] for k in ("vocab_size", "lines", "input_shards")})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
