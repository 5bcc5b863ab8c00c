"""The llama2c model arguments, size presets and overrides, without torch (the workflow
checks them while Snakemake parses the config; :mod:`.architectures` builds the model).

``studies.tinystories.model`` names a preset (the original's ``configs/*.py`` size
configs, spec 2.2) and a mapping of overrides. :data:`OVERRIDE_TYPES` lists the keys an
override may set and their types; ``config/schema/tinystories.yaml``
(``$defs/llama2c_overrides``) spells the same table out for jsonschema, and a unit test
keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# llama2.c's ModelArgs (the ``model_args`` of its checkpoints), in its order.
MODEL_ARGS = (
    "dim",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "vocab_size",
    "hidden_dim",
    "multiple_of",
    "norm_eps",
    "max_seq_len",
    "dropout",
    "rope_theta",
)

# key -> (JSON type(s), description); "null" means "derive it" (n_kv_heads = n_heads,
# hidden_dim from dim and multiple_of, scaled_init = the original's w3 and wo).
OVERRIDE_TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "dim": (("integer",), "model width"),
    "n_layers": (("integer",), "transformer blocks"),
    "n_heads": (("integer",), "query heads"),
    "n_kv_heads": (("integer", "null"), "key/value heads (null = n_heads)"),
    "vocab_size": (("integer",), "vocabulary (must equal vocab.vocab_size)"),
    "hidden_dim": (("integer", "null"), "SwiGLU width (null = multiple_of * ceil(8 dim / 3 / multiple_of))"),
    "multiple_of": (("integer",), "SwiGLU width rounding"),
    "norm_eps": (("number",), "RMSNorm epsilon"),
    "max_seq_len": (("integer",), "context length (rotary tables)"),
    "dropout": (("number",), "dropout of embeddings, attention and residuals"),
    "rope_theta": (("number",), "rotary base"),
    "scaled_init": (("array", "null"), "Linear layers initialised at 0.02 / sqrt(2 L) (null = w3, wo)"),
}
LINEAR_LAYERS = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")

# The original's size configs (spec 2.2); "tiny" is the CPU demo's (spec 5.3).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "dim": 64,
        "n_layers": 4,
        "n_heads": 4,
        "n_kv_heads": 4,
        "multiple_of": 32,
        "vocab_size": 512,
        "max_seq_len": 256,
    },
    "base8M": {
        "dim": 288,
        "n_layers": 6,
        "n_heads": 6,
        "n_kv_heads": 6,
        "multiple_of": 32,
        "vocab_size": 8192,
        "max_seq_len": 256,
    },
    "base30M": {
        "dim": 512,
        "n_layers": 8,
        "n_heads": 8,
        "n_kv_heads": 8,
        "multiple_of": 64,
        "vocab_size": 8192,
        "max_seq_len": 256,
    },
    "base91M": {
        "dim": 768,
        "n_layers": 12,
        "n_heads": 12,
        "n_kv_heads": 12,
        "multiple_of": 64,
        "vocab_size": 8192,
        "max_seq_len": 256,
    },
    "base210M": {
        "dim": 1024,
        "n_layers": 16,
        "n_heads": 16,
        "n_kv_heads": 16,
        "multiple_of": 64,
        "vocab_size": 8192,
        "max_seq_len": 1024,
    },
}


def resolved(preset: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The preset's values with the overrides applied (no defaults, no checks)."""
    return {**PRESETS[preset], **(overrides or {})}


def model_problems(model: Mapping[str, Any], block_size: int, vocab_size: int, where: str) -> list[str]:
    """What the schema cannot say about ``studies.tinystories.model`` (after preset +
    overrides): head shapes, the vocabulary, and training windows that must fit the
    context. ``where`` is the study's config path."""
    preset, overrides = model["preset"], dict(model.get("overrides") or {})
    values = resolved(preset, overrides)

    def origin(key: str) -> str:
        if key in overrides:
            return f"{where}.model.overrides.{key}"
        return f"{where}.model.preset ({preset}: {key}={values[key]})"

    out = []
    heads, kv = values["n_heads"], values.get("n_kv_heads") or values["n_heads"]
    if values["dim"] % heads:
        out.append(f"{origin('dim')}: dim={values['dim']} is not divisible by n_heads={heads} ({origin('n_heads')})")
    elif (values["dim"] // heads) % 2:
        out.append(f"{origin('dim')}: the head dimension dim / n_heads = {values['dim'] // heads} must be even")
    if heads % kv:
        out.append(f"{origin('n_kv_heads')}: n_kv_heads={kv} does not divide n_heads={heads}")
    if "vocab_size" in overrides and overrides["vocab_size"] != vocab_size:
        out.append(
            f"{where}.model.overrides.vocab_size: {overrides['vocab_size']} differs from "
            f"{where}.vocab.vocab_size={vocab_size} (the model takes the tokenizer's size; drop the override)"
        )
    if block_size > values["max_seq_len"]:
        out.append(
            f"{where}.block_size: {block_size} exceeds the model's max_seq_len={values['max_seq_len']} "
            f"({origin('max_seq_len')}); lower {where}.block_size or set {where}.model.overrides.max_seq_len"
        )
    return out
