"""``(instruction, text)`` items → token ids, and how many leading tokens pooling must skip.

The rule, as in InstructorEmbedding 1.0.1: the model reads ``(instruction + text.strip()).strip()``,
and the first ``n`` tokens are left out of pooling, where ``n`` is the token count of
``instruction.strip()`` with special tokens, minus one (T5: its pieces without ``</s>``;
BERT: ``[CLS]`` and its pieces), and ``n <= 1`` means nothing is left out.

Two inputs are refused here, naming the item (:class:`~instructor_embed.errors.InputError` with ``index``):
text holding an unpaired UTF-16 surrogate (see :mod:`~instructor_embed.unicode_text`), and an item whose
instruction leaves none of the text in what pooling reads — an instruction that fills the window, or one whose
last word merges with the text's first into tokens that the instruction's own count covers (a zero vector).
"""

from __future__ import annotations

import copy
import itertools
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .errors import InputError
from .unicode_text import surrogate_problem


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
        self._closing: int | None = None

    def clone(self) -> InstructionTokenizer:
        """An equal tokenizer with its own copy of the underlying tokenizer (so its own lock): one per worker
        thread lets several threads tokenize at once instead of queueing on one lock."""
        twin = InstructionTokenizer(copy.deepcopy(self.tokenizer), self.max_length, self.lowercase)
        twin._skip_cache = dict(self._skip_cache)
        twin._closing = self._closing
        return twin

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
        instruction skips per item. A longer ``max_length`` than the window shows which items it would cut.
        An item that cannot be embedded (see the module docstring) raises an ``InputError`` naming it."""
        tokenized, problems = self._tokenize(items, max_length)
        if problems:
            index, param, why = problems[0]
            raise InputError(f"Item {index}: {why}", param=param, index=index)
        return tokenized

    def problems(self, items: Sequence[Item], max_length: int | None = None) -> list[tuple[int, str, str]]:
        """Every item that :meth:`tokenize` would refuse, as ``(index, param, what is wrong)``."""
        return self._tokenize(items, max_length)[1]

    def _tokenize(self, items: Sequence[Item], max_length: int | None) -> tuple[Tokenized, list[tuple[int, str, str]]]:
        if not items:
            return Tokenized([], []), []
        problems = []
        for index, item in enumerate(items):
            for part, value in (("instruction", item.instruction), ("text", item.text)):
                problem = surrogate_problem(value) if value else None
                if problem:
                    problems.append((index, part, f"the {part} {problem}"))
        unreadable = {index for index, _, _ in problems}  # the tokenizer would raise on them: it reads ""
        texts = ["" if index in unreadable else self.model_text(item) for index, item in enumerate(items)]
        ids = self._encode(texts, max_length)
        skips = [
            0 if index in unreadable else self.instruction_skip(item.instruction) for index, item in enumerate(items)
        ]
        window = max_length or self.max_length
        for index, (item, row, skip) in enumerate(zip(items, ids, skips, strict=True)):
            if index in unreadable:
                continue
            if not row or (skip and item.text.strip() and len(row) - skip - self.closing_tokens <= 0):
                problems.append((index, "instruction", self._nothing_to_pool(len(row), skip, window)))
        problems.sort()
        return Tokenized(ids, skips), problems

    @property
    def closing_tokens(self) -> int:
        """How many special tokens the tokenizer puts after the text (``</s>``, ``[SEP]``): 1, or 0."""
        if self._closing is None:
            marked, plain = self._encode(["a"])[0], self._encode_plain("a")
            starts = [s for s in range(len(marked) - len(plain) + 1) if marked[s : s + len(plain)] == plain]
            self._closing = len(marked) - starts[0] - len(plain) if starts else 0
        return self._closing

    def _encode_plain(self, text: str) -> list[int]:
        with tokenizer_lock(self.tokenizer):
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @staticmethod
    def _nothing_to_pool(length: int, skip: int, window: int) -> str:
        if not length:
            return "the text is empty and this tokenizer adds no special tokens: there is nothing to embed"
        if length >= window:
            return (
                f"the instruction takes {skip} of the {window} tokens the model reads, leaving no room for the text; "
                "shorten the instruction, or raise max_seq_length"
            )
        return (
            f"no token of the text is left to embed: the instruction's {skip} tokens cover all {length} tokens of "
            "instruction + text, because the instruction's last word and the text's first tokenize together; end "
            "the instruction with a space or punctuation, e.g. 'Represent the sentence: '"
        )

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
