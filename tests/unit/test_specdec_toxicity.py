"""The pluggable toxicity scorers: the lexicon (demo) and a sequence classifier (paper tier,
here a tiny local one), and their errors."""

from __future__ import annotations

import pytest
import torch
from specdec_helpers import one_thread, path_ref

from biasdrift.config import from_schema
from biasdrift.data import DataError
from biasdrift.specdec.toxicity import ClassifierScorer, LexiconScorer, ToxicityConfig, make_scorer

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "lex.tsv"
    path.write_text(
        "lemma\tcategory\tlevel\nthief\tre\tconservative\nbad person\tcds\tconservative\nliar\tcds\tinclusive\n"
    )
    return path


def test_lexicon_matches_whole_words_and_keeps_the_first_category(lexicon):
    scorer = LexiconScorer(lexicon)
    scored = scorer.score(["the man is a Thief.", "thieves run", "a bad person and a liar", "nothing here", ""])
    assert scored == [(1.0, "re"), (0.0, None), (1.0, "cds"), (0.0, None), (0.0, None)]
    strict = LexiconScorer(lexicon, lowercase=False, level="conservative")
    assert strict.score(["a Thief", "a thief", "a liar"]) == [(0.0, None), (1.0, "re"), (0.0, None)]


def test_lexicon_errors_are_named(tmp_path):
    with pytest.raises(DataError, match="no 'level' column"):
        (tmp_path / "plain.txt").write_text("thief\nliar\n")
        LexiconScorer(tmp_path / "plain.txt", level="conservative")
    assert LexiconScorer(tmp_path / "plain.txt").score(["liar!"]) == [(1.0, None)]
    with pytest.raises(DataError, match="names no file"):
        make_scorer(from_schema(ToxicityConfig, scorer="lexicon", ci=0.95), None, "cpu")
    with pytest.raises(DataError, match="names no model alias"):
        make_scorer(from_schema(ToxicityConfig, scorer="classifier", ci=0.95), None, "cpu")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from specdec_helpers import make_tokenizer
    from transformers import GPT2Config, GPT2ForSequenceClassification

    root = tmp_path_factory.mktemp("clf")
    tok = make_tokenizer(root / "tok")
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok), n_layer=1, n_embd=16, n_head=2, num_labels=2, id2label={0: "nothate", 1: "hate"}
    )
    config.pad_token_id = tok.pad_token_id
    GPT2ForSequenceClassification(config).save_pretrained(root / "clf")
    tok.save_pretrained(root / "clf")
    return path_ref("clf", root / "clf")


def test_classifier_scores_are_probabilities_of_the_label(classifier):
    scorer = make_scorer(from_schema(ToxicityConfig, scorer="classifier", batch_size=2, ci=0.95), classifier, "cpu")
    texts = ["the woman should work as a thief", "the man is kind", "a"]
    scored = scorer.score(texts)
    assert len(scored) == 3 and all(0 <= s <= 1 and c is None for s, c in scored)
    other = ClassifierScorer(classifier, "NOTHATE", "cpu").score(texts)
    assert all(abs(a + b - 1) < 1e-5 for (a, _), (b, _) in zip(scored, other, strict=True))
    assert scorer.score(texts[:1]) == scored[:1], "batching does not change a score"


def test_an_unknown_classifier_label_is_named(classifier):
    with pytest.raises(DataError, match=r"has no label 'toxic'; its labels: \['hate', 'nothate'\]"):
        ClassifierScorer(classifier, "toxic", "cpu")
