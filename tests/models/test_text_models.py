"""The text branch: text models learn, the tokenizer, the vocabulary (the contract: tests/models/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest

from emofuse.models import MODELS, create_model
from emofuse.models.text import EmbeddingCache, embed_texts, tokenize
from emofuse.models.text_nets import Vocabulary

LABELS = ("happy", "sad", "angry")
WORDS = {"happy": ["wonderful", "great", "love", "joy", "yay"], "sad": ["miss", "lonely", "cry", "lost", "gone"],
         "angry": ["hate", "furious", "stupid", "damn", "shut"]}


def _texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    X, y = [], []
    for k in range(n):
        label = LABELS[k % 3]
        words = list(rng.choice(WORDS[label], size=3)) + list(rng.choice(["the", "a", "it", "was", "so"], size=3))
        rng.shuffle(words)
        X.append(" ".join(words).capitalize() + ("!" if label == "angry" else "."))
        y.append(label)
    return X, y


@pytest.fixture(scope="module")
def data():
    return _texts(60, 0), _texts(30, 1)


FAST = {"text_bigru": {"train": {"epochs": 8, "batch_size": 16, "patience": 8, "lr": 5e-3}},
        "text_minilm_finetune": {"train": {"epochs": 3, "batch_size": 16, "patience": 3, "lr": 2e-4}}}


@pytest.mark.parametrize("name", sorted(n for n, s in MODELS.items() if s.modality == "words"))
def test_text_models_learn_an_easy_mapping(name, data):
    (X, y), (X_val, y_val) = data
    model = create_model(name, **FAST.get(name, {})).fit(X, y, labels=LABELS, X_val=X_val, y_val=y_val)
    probs = model.predict_proba([*X_val, ""])  # an empty string is still scored
    assert probs.shape == (len(X_val) + 1, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    accuracy = np.mean(np.array(LABELS)[probs[:-1].argmax(axis=1)] == np.array(y_val))
    assert accuracy > 0.8, f"{name} did not learn an easy word-emotion mapping ({accuracy:.2f})"


def test_tokenize_keeps_contractions_and_emphasis():
    assert tokenize("I DON’T care!! Really?") == ["i", "don't", "care", "!", "!", "really", "?"]
    assert tokenize("") == []


def test_vocabulary_maps_rare_and_unknown_words_to_one_index():
    vocab = Vocabulary.build(["a b b c c c", "c"], min_count=2)
    assert vocab.words == ("c", "b")
    assert list(vocab.encode("c b a zzz", max_tokens=10)) == [2, 3, 1, 1]
    assert list(vocab.encode("", max_tokens=10)) == [1]
    assert len(vocab.encode("c " * 100, max_tokens=7)) == 7


def test_minilm_embeddings_are_unit_length_order_independent_and_cached(tmp_path):
    texts = ["I am so happy today", "This is terrible.", "ok", "I am so happy today"]
    emb = embed_texts(texts)
    assert emb.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb[0], emb[3], atol=1e-6)  # batching and sorting do not change a text's vector
    np.testing.assert_allclose(embed_texts(texts[::-1])[::-1], emb, atol=1e-5)
    # Similar sentences are closer than unrelated ones: the encoder is the real pretrained one.
    a, b, c = embed_texts(["I am very happy", "I feel really glad", "The train leaves at noon"])
    assert a @ b > a @ c + 0.2
    cache = EmbeddingCache(tmp_path)
    calls = []
    first = cache.get_or_compute(texts, {"encoder": "minilm"}, lambda t: calls.append(1) or embed_texts(t))
    again = cache.get_or_compute(texts, {"encoder": "minilm"}, lambda t: calls.append(1) or embed_texts(t))
    assert len(calls) == 1 and np.array_equal(first, again)
