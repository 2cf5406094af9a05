"""What evaluate writes, and when: strict JSON, full-precision scores, short headings, results after each task."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from instructor_embed import MissingDependencyError


def test_results_json_is_strict_and_markdown_rounds_once(tmp_path):
    from instructor_embed.evaluation.reports import write_reports

    results = {"A": {"main_score": 0.502251, "cos_sim": float("nan"), "runs": [float("inf"), 1.0]}, "B": {"error": "x"}}
    write_reports(tmp_path, "instructor-large", results)
    on_disk = json.loads((tmp_path / "results.json").read_text(), parse_constant=lambda name: pytest.fail(name))
    assert on_disk["A"] == {"main_score": 0.502251, "cos_sim": None, "runs": [None, 1.0]}
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.startswith("# instructor-large\n") and "| A | 50.23 |" in markdown


def test_the_main_score_is_the_metric_at_full_precision():
    from types import SimpleNamespace

    from instructor_embed.evaluation.runner import _scores

    outcome = SimpleNamespace(
        scores={"test": [{"v_measure": 0.502251, "main_score": 0.5022, "v_measure_std": 0.01}]},
        get_score=lambda: 0.5022,
    )
    scores = _scores(outcome, "v_measure")
    assert scores["main_score"] == 0.502251 and scores["split"] == "test" and scores["v_measure_std"] == 0.01


def test_evaluate_without_the_eval_extra_names_it_and_creates_nothing(tmp_path, monkeypatch, capsys):
    from instructor_embed.cli import main
    from instructor_embed.evaluation.runner import EvalConfig, evaluate

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependencyError, match=r"instructor-embed\[eval\]"):
        evaluate(EvalConfig(models=("m",), tasks=("STS12",), output_dir=str(tmp_path / "out")))
    assert main(["evaluate", "--model", "m", "--tasks", "STS12", "--output-dir", str(tmp_path / "out")]) == 2
    assert "pip install 'instructor-embed[eval]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_results_are_written_after_each_task_and_missing_local_data_is_named(minilm_dir, tmp_path):
    """Away from the shared data, a local task says where it looked; the task before it is already on disk."""
    pytest.importorskip("mteb")
    from support import shared_path

    (tmp_path / "SICK_trial.tsv").symlink_to(shared_path("data/sts/sick2014/SICK_trial.txt"))
    columns = {"sentence1_column": "sentence_A", "sentence2_column": "sentence_B", "score_column": "relatedness_score"}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "SickTrial", "type": "sts", "test": "SICK_trial.tsv", **columns}))
    command = [sys.executable, "-m", "instructor_embed", "evaluate", "--model", str(minilm_dir), "--quiet"]
    command += ["--tasks", f"{spec},STS12", "--output-dir", str(tmp_path / "out"), "--data-dir", str(tmp_path / "no")]
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    results = json.loads((tmp_path / "out/results.json").read_text())
    assert results["SickTrial"]["main_score"] > 0.7
    assert f"local data was not found in {tmp_path / 'no'}" in results["STS12"]["error"]
    assert "superseded" not in result.stderr and "Loading weights" not in result.stderr
