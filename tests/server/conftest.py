"""The module-scoped server the HTTP tests share (see serving.py)."""

from __future__ import annotations

import pytest
from serving import API_KEY, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory, minilm_dir, tiny_t5_dir):
    """MiniLM as "minilm" and the random tiny T5 as "t5", with small limits the tests can reach."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    args = ["--model", f"minilm={minilm_dir}", "--model", f"t5={tiny_t5_dir}", "--api-key", API_KEY]
    args += ["--max-wait-ms", "40", "--max-concurrent-inputs", "40", "--max-client-batch", "32"]
    args += ["--payload-limit", "100000", "--max-input-tokens", "128", "--device", "cpu"]
    with running_server(args, tmp_path_factory.mktemp("serve") / "serve.log") as process:
        yield process
