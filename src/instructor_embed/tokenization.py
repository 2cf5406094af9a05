"""``(instruction, text)`` items → token ids, and how many leading tokens pooling must skip.

The rule, as in InstructorEmbedding 1.0.1: the model reads ``(instruction + text.strip()).strip()``,
and the first ``n`` tokens are left out of pooling, where ``n`` is the token count of
``instruction.strip()`` with special tokens, minus one (T5: its pieces without ``</s>``;
BERT: ``[CLS]`` and its pieces), and ``n <= 1`` means nothing is left out.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Item:
    """One input: an optional instruction and a text."""

    instruction: str | None
    text: str


@dataclass(frozen=True)
class Tokenized:
    """Items after tokenization: unpadded token ids (truncated to the model's window) and, per item, how many
    leading instruction tokens pooling leaves out. ``token_counts`` is what the encoder reads per item."""

    ids: list[list[int]]
    skips: list[int]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def token_counts(self) -> list[int]:
        return [len(row) for row in self.ids]

    def take(self, indices: Iterable[int]) -> Tokenized:
        """The items at ``indices``, in that order (e.g. one batch)."""
        indices = list(indices)
        return Tokenized([self.ids[i] for i in indices], [self.skips[i] for i in indices])

    @classmethod
    def concat(cls, parts: Iterable[Tokenized]) -> Tokenized:
        """One ``Tokenized`` holding the items of every part, in order (e.g. several callers' items)."""
        parts = list(parts)
        return cls([row for part in parts for row in part.ids], [skip for part in parts for skip in part.skips])


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def tokenizer_lock(tokenizer) -> threading.Lock:
    """The lock that every call into ``tokenizer`` holds. A fast tokenizer keeps its truncation settings in
    shared state that each call sets: two threads with different settings (older ``tokenizers``: at all) get
    "Already borrowed" errors or, with current ``tokenizers``, one thread's texts cut at the other's length."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(tokenizer)
        if lock is None:
            lock = _LOCKS[tokenizer] = threading.Lock()
        return lock


class InstructionTokenizer:
    """Tokenizes items in one pass and caches the token count of each distinct instruction.

    Safe to call from several threads (see :func:`tokenizer_lock`); tokenizing is a small part of an encode call.
    """

    def __init__(self, tokenizer, max_length: int, lowercase: bool = False):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.lowercase = lowercase
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._skip_cache: dict[str, int] = {}

    def model_text(self, item: Item) -> str:
        """The exact string the encoder reads for an item."""
        text = item.text.strip() if item.instruction is None else (item.instruction + item.text.strip()).strip()
        return text.lower() if self.lowercase else text

    def instruction_skip(self, instruction: str | None) -> int:
        """How many leading tokens of the item are instruction tokens to leave out of pooling."""
        if not instruction:
            return 0
        skip = self._skip_cache.get(instruction)
        if skip is None:
            stripped = instruction.strip().lower() if self.lowercase else instruction.strip()
            length = len(self._encode([stripped])[0])
            skip = self._skip_cache[instruction] = length - 1 if length - 1 > 1 else 0
        return skip

    def tokenize(self, items: Sequence[Item], max_length: int | None = None) -> Tokenized:
        """Token ids per item (truncated to ``max_length``, default the model's window; unpadded) and
        instruction skips per item. A longer ``max_length`` than the window shows which items it would cut."""
        if not items:
            return Tokenized([], [])
        ids = self._encode([self.model_text(item) for item in items], max_length)
        return Tokenized(ids, [self.instruction_skip(item.instruction) for item in items])

    def _encode(self, texts: list[str], max_length: int | None = None) -> list[list[int]]:
        with tokenizer_lock(self.tokenizer):
            encoded = self.tokenizer(
                texts, truncation=True, max_length=max_length or self.max_length, add_special_tokens=True
            )
        return encoded["input_ids"]

    def collate(self, batch: Tokenized) -> dict[str, Tensor]:
        """Right-pad a batch to its longest item and build the encoder and pooling masks."""
        ids, skips = batch.ids, batch.skips
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))  # (B,)
        width = int(lengths.max())
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(ids)), lengths)
        columns = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        input_ids = np.full((len(ids), width), self.pad_token_id, dtype=np.int64)  # (B, T)
        input_ids[rows, columns] = flat
        positions = np.arange(width)[None, :]  # (1, T)
        attention_mask = positions < lengths[:, None]  # (B, T)
        skip = np.asarray(skips, dtype=np.int64)
        pooling_mask = attention_mask & (positions >= skip[:, None])
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask.astype(np.int64)),
            "pooling_mask": torch.from_numpy(pooling_mask.astype(np.int64)),
            "instruction_length": torch.from_numpy(skip),
        }
