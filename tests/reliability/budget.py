"""How long the fuzzers and seeded faults run: short in ``make test``, long in ``make fuzz``."""

from __future__ import annotations

import os

LONG = os.environ.get("INSTRUCTOR_EMBED_FUZZ") == "long"


def seeds(short: int, long: int) -> list[int]:
    """The seeds of a seeded-fault test: a few in ``make test``, many in ``make fuzz``."""
    return list(range(long if LONG else short))
