"""The integration examples run as a user would run them (offline: on the MiniLM weights)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "integrations"


@pytest.mark.parametrize(
    "name", ["langchain", "llamaindex", "haystack", "chroma", "lancedb", "milvus", "sentence_transformers"]
)
def test_example_runs(name):
    modules = {
        "langchain": "langchain_core",
        "llamaindex": "llama_index.core",
        "chroma": "chromadb",
        "milvus": "pymilvus",
    }
    pytest.importorskip(modules.get(name, name))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}_example.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last == "Yams store food in their tubers." or float(last) <= 1e-6
