from __future__ import annotations

import numpy as np

from handoff.decide import Encoder, get_encoder


def test_encode_returns_unit_float32_rows(encoder: Encoder) -> None:
    rows = encoder.encode(["How do I reset my password?", "Where is my order?"])
    assert rows.shape == (2, encoder.dim)
    assert rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-4)


def test_encode_one_matches_batch_and_is_cached(encoder: Encoder) -> None:
    text = "a sentence only this test encodes"
    first = encoder.encode_one(text)
    assert encoder.encode_one(text) is first  # served from the cache, not re-encoded
    assert np.allclose(encoder.encode([text])[0], first)
    assert not first.flags.writeable


def test_similarity_ranks_paraphrase_above_unrelated(encoder: Encoder) -> None:
    sims = encoder.similarity(
        "how can I reset my password", ["How do I reset my password?", "Do you ship to Ireland?"]
    )
    assert sims[0] > 0.9 > 0.5 > sims[1]


def test_encode_empty_and_singleton(encoder: Encoder) -> None:
    assert encoder.encode([]).shape == (0, encoder.dim)
    assert get_encoder() is encoder


def test_fast_path_matches_sentence_transformers(encoder: Encoder) -> None:
    texts = ["hi", "I was charged twice and want a refund!!", "¿Puedo hablar con un agente?"]
    texts.append("long " * 600)  # past the model's 256-token window: truncated the same way
    texts += [f"a batch of {n} messages of different lengths " * (n % 5 + 1) for n in range(40)]
    ours = encoder.encode(texts)
    reference = encoder._model.encode(
        texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    assert np.allclose(ours, reference, atol=1e-5)
