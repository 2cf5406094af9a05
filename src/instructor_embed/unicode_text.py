"""What counts as text: any Unicode string — but not one holding an unpaired UTF-16 surrogate.

Python strings may hold lone surrogates (U+D800..U+DFFF), and JSON's ``"\\ud800"`` escape decodes to one, but
they are not Unicode characters: UTF-8 cannot encode them, so no tokenizer, Parquet file or HTTP response can
carry them. The library (naming the item), the file readers (naming the line) and the server (a 400 naming
``input[i]``) refuse them alike, rather than replace them silently. Everything else — NUL and other control
characters, right-to-left marks, zero-width joiners, emoji, combining sequences — is text and is embedded.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_problem(value: str) -> str | None:
    """What is wrong with ``value``, for an error message ("holds an unpaired ... surrogate ..."), or None."""
    found = _SURROGATE.search(value)
    if found is None:
        return None
    return (
        f"holds an unpaired UTF-16 surrogate (U+{ord(found.group()):04X} at character {found.start()}), which is "
        "not Unicode text; it usually comes from a JSON \\u escape without its pair, or from text cut in the "
        "middle of an emoji: remove or replace it"
    )
