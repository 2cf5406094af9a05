"""Fault injection for ``train --resume``: a kill inside each step of saving a checkpoint, SIGKILLs at seeded
random moments, a damaged checkpoint left behind. Every resumed run ends at the uninterrupted run's weights."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from budget import seeds
from safetensors.torch import load_file

from instructor_embed import faults

pytest.importorskip("accelerate")
pytestmark = pytest.mark.slow

_TRAINING = Path(__file__).parents[1] / "training"


def _training_module(name: str):
    spec = importlib.util.spec_from_file_location(f"training_{name}", _TRAINING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


medi_rows = _training_module("conftest").medi_rows


@pytest.fixture(scope="module")
def straight(minilm_dir, tmp_path_factory):
    """The data, the command line, and the weights and log of an uninterrupted run of 12 steps."""
    folder = tmp_path_factory.mktemp("train")
    (folder / "medi.jsonl").write_text("".join(json.dumps(row) + "\n" for row in medi_rows()))

    def command(output: Path) -> list[str]:
        return [sys.executable, "-m", "instructor_embed", "train", "--model", str(minilm_dir), "--data",
                str(folder / "medi.jsonl"), "--output-dir", str(output), "--batch-size", "2", "--max-steps", "12",
                "--learning-rate", "1e-4", "--save-steps", "4", "--logging-steps", "1", "--max-seq-length", "64",
                "--seed", "5", "--quiet"]  # fmt: skip

    started = time.monotonic()
    result = subprocess.run(command(folder / "straight"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return command, folder / "straight", time.monotonic() - started


def resume_until_done(command, output: Path) -> None:
    result = subprocess.run([*command(output), "--resume"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def same_run(output: Path, straight) -> None:
    reference = straight[1]
    for key, value in load_file(reference / "model.safetensors").items():
        torch.testing.assert_close(load_file(output / "model.safetensors")[key], value, atol=1e-6, rtol=1e-5)
    steps = [json.loads(line)["step"] for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")], "no partial checkpoint is left"


@pytest.mark.parametrize("step", ["checkpoint.written", "checkpoint.renamed", "model.safetensors.published"])
def test_a_kill_inside_saving_a_checkpoint_or_the_model_resumes_to_the_same_weights(straight, tmp_path, step):
    """The second checkpoint's two steps, and the final model's publishing into the run's folder: found by the
    seeded kills below, a kill there used to leave safetensors' temporary file (.tmpXXXXXX) beside the model."""
    command, _, _ = straight
    at = 1 if step.endswith("published") else 2
    killed = subprocess.run(command(tmp_path / "run"), env={**os.environ, faults.VARIABLE: f"{step}=kill@{at}"})
    assert killed.returncode == -signal.SIGKILL
    if step.startswith("checkpoint"):
        assert (tmp_path / "run" / "checkpoint-8").is_dir() == (step == "checkpoint.renamed")
    else:
        assert (tmp_path / "run" / ".final.partial").is_dir()
    resume_until_done(command, tmp_path / "run")
    same_run(tmp_path / "run", straight)


def test_a_damaged_latest_checkpoint_is_skipped_for_the_previous_complete_one(straight, tmp_path):
    command, _, _ = straight
    killed = subprocess.run(command(tmp_path / "run"), env={**os.environ, faults.VARIABLE: "checkpoint.renamed=kill@2"})
    assert killed.returncode == -signal.SIGKILL
    state = tmp_path / "run" / "checkpoint-8" / "training_state" / "model.safetensors"  # what resume loads
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # a disk that lost half of it
    result = subprocess.run([*command(tmp_path / "run"), "--resume"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "checkpoint-8 is damaged (training_state/model.safetensors differs from what was saved); it is skipped"
        in result.stderr
    )
    same_run(tmp_path / "run", straight)


def test_sigkills_at_seeded_random_moments_then_resume_converges(straight, tmp_path):
    """Real SIGKILLs from outside at seeded moments (2 in make test, 20 in make fuzz); each next run resumes
    from the last complete checkpoint, or starts again when the kill came before the first."""
    command, _, duration = straight
    output = tmp_path / "run"

    def next_run() -> list[str]:
        if any((output / f"checkpoint-{step}" / "trainer_state.json").is_file() for step in (4, 8, 12)):
            return [*command(output), "--resume"]
        shutil.rmtree(output, ignore_errors=True)
        return command(output)

    for seed in seeds(2, 20):
        delay = random.Random(seed).uniform(0.5, duration)
        process = subprocess.Popen(next_run(), stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        print(f"seed {seed}: killed after {delay:.2f} s (exit {process.returncode})")
    result = subprocess.run(next_run(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    same_run(output, straight)
