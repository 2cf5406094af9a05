"""The benchmarks' result files: named as their options say."""

import importlib.util
from pathlib import Path

from instructor_embed.hardware import detect

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(script: str):
    spec = importlib.util.spec_from_file_location(script, BENCHMARKS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ablation_result_files_keep_a_tag_with_a_dot():
    # "--tag tau0.01" once wrote instruction-ablation-tau0.json: Path.with_suffix cut the name at the tag's dot
    files = load("instruction_ablation").result_files("tau0.01")
    stem = f"instruction-ablation-tau0.01-{detect('cpu').signature()}"
    assert files == {kind: BENCHMARKS / "results" / f"{stem}.{kind}" for kind in ("json", "md", "png")}
