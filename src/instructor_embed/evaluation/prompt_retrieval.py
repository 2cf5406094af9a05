"""Prompt retrieval: choose in-context examples for an LLM by embedding similarity (the paper's third benchmark).

The pool of annotated examples is embedded once; each test input gets the ``k`` pool examples most similar to
it (cosine), and ``build_prompt`` lays them out with the most similar one closest to the input. Running the LLM
and scoring its outputs is left to the caller.

    selector = ExampleSelector(model, [ex["input"] for ex in pool], instruction="Represent the review: ")
    indices, scores = selector.select(test_inputs, k=8)
    prompt = build_prompt([render(pool[i]) for i in indices[0]], test_inputs[0])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InputError
from ..model import INSTRUCTOR

_UNSET = object()


class ExampleSelector:
    """Nearest pool examples for each query; the pool's embeddings are computed once."""

    def __init__(
        self, model: INSTRUCTOR, examples: Sequence[str], instruction: str | None = None, batch_size: int = 32
    ):
        """``examples``: the text of each pool example to compare (e.g. its input); ``instruction``: the
        instruction both sides are embedded with, unless ``select`` is given another for the queries."""
        if len(examples) == 0:
            raise InputError("the example pool is empty")
        self.model = model
        self.examples = list(examples)
        self.instruction = instruction
        self.batch_size = batch_size
        self.embeddings = torch.from_numpy(self._embed(self.examples, instruction))

    def select(
        self,
        queries: Sequence[str],
        k: int,
        *,
        instruction: str | None | object = _UNSET,
        exclude_identical: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, scores)``, each ``(len(queries), k)``: the pool examples most similar to each query,
        most similar first, and their cosine similarities. ``exclude_identical`` skips pool examples whose text
        equals the query's (selecting demonstrations for the pool's own items)."""
        if not 1 <= k <= len(self.examples) - (1 if exclude_identical else 0):
            raise InputError(f"k must be between 1 and the pool's {len(self.examples)} examples, got {k}")
        instruction = self.instruction if instruction is _UNSET else instruction
        vectors = torch.from_numpy(self._embed(list(queries), instruction))
        positions: dict[str, list[int]] = {}
        for index, text in enumerate(self.examples):
            positions.setdefault(text, []).append(index)
        indices, scores = [], []
        for start in range(0, len(vectors), 1024):  # bounded memory for large query sets
            similarity = vectors[start : start + 1024] @ self.embeddings.T
            if exclude_identical:
                for row, query in enumerate(queries[start : start + 1024]):
                    similarity[row, positions.get(query, [])] = -torch.inf
            best = similarity.topk(k, dim=1)
            indices.append(best.indices.numpy())
            scores.append(best.values.numpy())
        if not indices:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.concatenate(indices), np.concatenate(scores)

    def _embed(self, texts: list[str], instruction: str | None) -> np.ndarray:
        for number, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"item {number}: expected a string, got {type(text).__name__}")
        items = texts if instruction is None else [[instruction, text] for text in texts]
        return self.model.encode(items, batch_size=self.batch_size, normalize_embeddings=True)


def build_prompt(demonstrations: Sequence[str], query: str, separator: str = "\n\n") -> str:
    """An in-context prompt from rendered demonstrations given most similar first: they are laid out in reverse,
    so the most similar example sits right before the query (as in the selective-annotation setup)."""
    return separator.join([*reversed(demonstrations), query])
