"""Whether a main model and an assistant can decode together (the one piece that the
pair loader :mod:`biasdrift.specdec.conditions` and the decoding loop
:mod:`biasdrift.specdec.decoding` share; neither imports the other)."""

from __future__ import annotations


class SpecdecError(ValueError):
    """Bad input for speculative decoding (models, tokenizers, templates)."""


def output_vocab(model) -> int:
    return int(model.get_output_embeddings().weight.shape[0])


def check_pair(main, assistant, main_tokenizer, assistant_tokenizer, names: tuple[str, str] = ("main", "assistant")):
    """Main and assistant must share one tokenizer and one output vocabulary: greedy
    acceptance compares token ids. Raises :class:`SpecdecError` naming both models."""
    a, b = names
    problems = []
    vocab_a, vocab_b = main_tokenizer.get_vocab(), assistant_tokenizer.get_vocab()
    if vocab_a != vocab_b:
        only_a = sorted(set(vocab_a) - set(vocab_b))[:5]
        only_b = sorted(set(vocab_b) - set(vocab_a))[:5]
        moved = sum(1 for t in set(vocab_a) & set(vocab_b) if vocab_a[t] != vocab_b[t])
        problems.append(
            f"the tokenizers differ ({len(vocab_a)} vs {len(vocab_b)} entries; only in {a}: {only_a}, "
            f"only in {b}: {only_b}, {moved} shared tokens with other ids)"
        )
    if main_tokenizer.eos_token_id != assistant_tokenizer.eos_token_id:
        problems.append(f"EOS ids differ ({main_tokenizer.eos_token_id} vs {assistant_tokenizer.eos_token_id})")
    if output_vocab(main) != output_vocab(assistant):
        problems.append(f"output vocabularies differ ({output_vocab(main)} vs {output_vocab(assistant)} logits)")
    if problems:
        raise SpecdecError(
            f"main model {a!r} and assistant {b!r} cannot be paired for speculative decoding: " + "; ".join(problems)
        )
