"""A Hub token never appears in logs, errors, manifests or output."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from instructor_embed import INSTRUCTOR, ModelNotFoundError, ModelSpec

TOKEN = "hf_SeCrEtTokenThatMustNeverBePrinted0123"


def test_a_spec_never_shows_or_serialises_its_token(tiny_t5_dir):
    spec = ModelSpec(str(tiny_t5_dir), token=TOKEN)
    assert TOKEN not in repr(spec) and TOKEN not in json.dumps(spec.to_dict())
    assert ModelSpec.from_dict(spec.to_dict()) == spec  # the token is not part of what a spec is


def test_loading_with_a_token_logs_and_raises_without_it(tiny_t5_dir, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    caplog.set_level(logging.DEBUG)
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", token=TOKEN)
    assert TOKEN not in repr(model)
    with pytest.raises(ModelNotFoundError) as caught:
        INSTRUCTOR("someone/private-model", device="cpu", token=TOKEN, cache_folder=tmp_path)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert TOKEN not in caplog.text


@pytest.mark.slow
def test_a_cli_session_with_hf_token_never_prints_it(tiny_t5_dir, tmp_path):
    """encode into a folder (the manifest too), search it, and fail to load a Hub model, all with HF_TOKEN set
    and verbose logs: the token is in none of the output, errors or files."""
    (tmp_path / "in.txt").write_text("first text\nsecond text\n")
    env = {**os.environ, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "debug"}
    base = [sys.executable, "-m", "instructor_embed"]
    runs = [
        [*base, "encode", "--model", str(tiny_t5_dir), "--device", "cpu", "--input", str(tmp_path / "in.txt"),
         "--output", str(tmp_path / "out")],
        [*base, "search", "--index", str(tmp_path / "out"), "--query", "text", "--device", "cpu"],
        [*base, "encode", "--model", "someone/private-model", "--input", str(tmp_path / "in.txt"),
         "--output", str(tmp_path / "x.npy")],
    ]  # fmt: skip
    printed = ""
    for command in runs:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        printed += result.stdout + result.stderr
    assert "someone/private-model" in printed  # the failing load was reported
    assert TOKEN not in printed
    for path in (tmp_path / "out").iterdir():
        assert TOKEN.encode() not in path.read_bytes()
