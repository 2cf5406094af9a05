"""Helpers shared by the tests (kept out of conftest.py, whose module name is not unique across folders)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INSTRUCTOR_EMBED_SHARED", ROOT.parent / "shared"))
GOLDENS = Path(__file__).parent / "goldens"


def shared_path(relative: str) -> Path:
    """A path under ../shared, skipping the test when it is absent (e.g. a user's fresh clone)."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (set INSTRUCTOR_EMBED_SHARED to the shared data folder)")
    return path


def load_golden(name: str) -> tuple[dict, dict[str, np.ndarray]]:
    record = json.loads((GOLDENS / f"{name}.json").read_text(encoding="utf-8"))
    with np.load(GOLDENS / f"{name}.npz") as arrays:
        return record, {key: arrays[key] for key in arrays.files}
