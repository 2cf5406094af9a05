"""Fuzzers and fault injection. ``make test`` runs them short (fixed seeds, a few hundred examples each);
``make fuzz`` sets INSTRUCTOR_EMBED_FUZZ=long: many more examples with a random seed (printed), and more kills."""

from __future__ import annotations

from budget import LONG
from hypothesis import HealthCheck, settings

settings.register_profile(
    "short", max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=400, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("long" if LONG else "short")
