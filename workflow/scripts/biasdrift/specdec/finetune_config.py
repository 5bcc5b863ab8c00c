"""The fine-tuning sections of study "specdec" (``studies.specdec.finetune_data`` and
``studies.specdec.milestones``), apart from :mod:`biasdrift.specdec.finetune` so that a job
can be configured without importing the Trainer stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class FinetuneDataConfig:
    SCHEMA: ClassVar[str] = "studies.specdec.finetune_data"  # the schema section it mirrors: its defaults
    dataset: str = field(metadata={"help": "Dataset alias of the news corpus."})
    text_column: str = field(metadata={"help": "Column holding the article text."})
    train_split: str = field(metadata={"help": "Split to train on."})
    eval_split: str | None = field(metadata={"help": "Split for the validation loss (None = none)."})
    max_length: int = field(metadata={"help": "Tokens per article (longer ones are truncated)."})
    max_examples: int | None = field(metadata={"help": "Use only the first N training articles."})


@dataclass
class MilestoneConfig:
    SCHEMA: ClassVar[str] = "studies.specdec.milestones"  # the schema section it mirrors: its defaults
    every_n_steps: int = field(metadata={"help": "Store template distributions every N steps (0 = off)."})
    each_epoch: bool = field(metadata={"help": "Store them at the end of every epoch."})
    dtype: str = field(metadata={"help": "float32 or float16 storage of the log-probabilities."})
    save_epoch_models: bool = field(metadata={"help": "Save the weights at the end of every epoch."})
    batch_size: int = field(metadata={"help": "Templates per forward pass."})
