"""hypothesis strategies for what users hand to instructor-embed: every kind of Unicode, every item shape."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from instructor_embed import Item

# Characters that break naive text handling: unpaired surrogates (JSON "\ud800"), NUL and other controls,
# right-to-left and zero-width marks, emoji with joiners and skin tones, combining accents, odd whitespace.
SPECIAL = [
    "\ud800",
    "\udfff",
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u202e",
    "\ufeff",
    "\ufffd",
    "\u0301",
    "\u0308",
    "🧑\u200d🏫",
    "👍🏽",
    "😀",
    "日本語",
    "हिन्दी",
    "العربية",
    "\u00a0",
    "\u2028",
    "\t",
    "\n",
    "\r",
    " ",
    "Represent the sentence: ",
]
pieces = st.one_of(st.characters(exclude_categories=()), st.sampled_from(SPECIAL))  # every code point, surrogates too


def strings(min_size: int = 0, max_size: int = 40):
    return st.lists(pieces, min_size=min_size, max_size=max_size).map("".join)


texts = st.one_of(
    strings(),
    st.builds(lambda piece, times: piece * times, strings(1, 6), st.integers(80, 400)),  # over the window
)
INSTRUCTIONS = [
    "Represent the sentence: ",
    "Represent the Medicine sentence for retrieving a duplicate sentence:",
    "Represent the Science title:",
    "",
    "   ",
    "word " * 300,
    "日本語हिन्दी",
]
instructions = st.one_of(st.sampled_from(INSTRUCTIONS), texts)

valid_items = st.one_of(
    texts,
    st.builds(lambda i, t: [i, t], instructions, texts),
    st.builds(lambda i, t: (i, t), instructions, texts),
    st.builds(lambda i, t, label: [i, t, label], instructions, texts, st.integers() | st.none() | st.text(max_size=3)),
    st.builds(Item, st.none() | instructions, texts),
    st.builds(np.str_, texts),
)
invalid_items = st.one_of(
    st.binary(max_size=8),
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    st.lists(texts, min_size=0, max_size=1),
    st.lists(texts, min_size=4, max_size=5),
    st.builds(lambda t: [1, t], texts),
    st.builds(lambda i: [i, 2.5], instructions),
    st.builds(lambda t: [b"instruction", t], texts),
)
items = st.one_of(*[valid_items] * 12, invalid_items)  # mostly valid; a batch of 6 holds a bad one a third of the time
