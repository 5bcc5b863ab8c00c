"""Rule train_tokenizer: train one tokenizer alias on its corpus."""

from biasdrift.config import config_from_dict
from biasdrift.runtime import job_for
from biasdrift.tokenization import TokenizerConfig, train_tokenizer_from_dataset


def main(smk) -> None:
    spec = dict(smk.params.tokenizer)
    column = spec.pop("text_column")
    spec.pop("corpus")
    with job_for(smk) as record:
        cfg = config_from_dict(TokenizerConfig, spec, f"tokenizers.{smk.wildcards.tokenizer}")
        record.update(train_tokenizer_from_dataset(smk.input.data, column, cfg, smk.output.tokenizer))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script: directive
