"""Real training runs on the real all-MiniLM-L6-v2 weights: loss, resume after SIGKILL, two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from copy import deepcopy
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from instructor_embed import INSTRUCTOR, InputError
from instructor_embed.tokenization import Item
from instructor_embed.training.loop import TrainConfig, train

pytest.importorskip("accelerate")


def config(minilm_dir, medi_file, output, **overrides) -> TrainConfig:
    settings = dict(
        model=str(minilm_dir),
        data=str(medi_file),
        output_dir=str(output),
        batch_size=2,
        max_steps=8,
        learning_rate=1e-4,
        cl_temperature=0.05,
        save_steps=4,
        logging_steps=1,
        max_seq_length=64,
        seed=3,
        show_progress=False,
    )
    return TrainConfig(**{**settings, **overrides})


def log(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(directory / "model.safetensors")


@pytest.mark.slow
def test_loss_falls_and_outputs_load(minilm_dir, medi_file, tmp_path):
    output = train(config(minilm_dir, medi_file, tmp_path / "run", max_steps=24, save_steps=12))
    records = log(output)
    assert [r["step"] for r in records] == list(range(1, 25))
    assert {"loss", "lr", "examples_per_s", "epoch", "task"} <= set(records[0])
    assert {r["task"] for r in records} == {"qa", "sts"}
    first, last = sum(r["loss"] for r in records[:6]) / 6, sum(r["loss"] for r in records[-6:]) / 6
    assert last < 0.7 * first, (first, last)
    assert records[0]["lr"] < records[3]["lr"]  # warm-up
    for directory in (output, output / "checkpoint-12", output / "checkpoint-24"):
        assert INSTRUCTOR(directory, device="cpu").encode(
            [["Represent the question: ", "Who wrote Hamlet?"]]
        ).shape == (1, 384)


@pytest.mark.slow
def test_cached_loss_gives_the_same_gradients(minilm_dir, medi_file):
    """GradCache changes memory, not maths: with dropout off, one step's gradients match the plain step's."""
    from accelerate import Accelerator

    from instructor_embed.training.data import load_medi
    from instructor_embed.training.loop import Collator, _step

    model = INSTRUCTOR(minilm_dir, device="cpu", max_seq_length=64).eval()  # eval: no dropout, gradients still flow
    examples = load_medi(medi_file).examples[:6]
    features, layout, scores = Collator(model.instruction_tokenizer, {"qa": "medi", "sts": "medi"})(examples)
    accelerator = Accelerator(cpu=True)
    gradients = []
    for chunk in (None, 2):
        model.zero_grad()
        settings = config(minilm_dir, medi_file, "unused", cache_chunk_size=chunk)
        loss = _step(model, features, layout, scores, settings, accelerator)
        gradients.append((loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (plain_loss, plain), (cached_loss, cached) = gradients
    assert cached_loss == pytest.approx(plain_loss, rel=1e-5)
    assert plain.keys() == cached.keys() and len(plain) > 50
    for name, gradient in plain.items():
        torch.testing.assert_close(cached[name], gradient, atol=1e-6, rtol=1e-4)


def _run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "instructor_embed", "train", *args, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _cli_args(minilm_dir, medi_file, output, steps=12) -> list[str]:
    return [
        "--model",
        str(minilm_dir),
        "--data",
        str(medi_file),
        "--output-dir",
        str(output),
        "--batch-size",
        "2",
        "--max-steps",
        str(steps),
        "--learning-rate",
        "1e-4",
        "--save-steps",
        "4",
        "--logging-steps",
        "1",
        "--max-seq-length",
        "64",
        "--seed",
        "5",
    ]


@pytest.mark.slow
def test_two_processes_on_cpu(minilm_dir, medi_file, tmp_path):
    """torchrun with two CPU processes (gloo): each rank trains on its slice of a same-task global batch."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "instructor_embed",
        "train",
        *_cli_args(minilm_dir, medi_file, tmp_path / "ddp", steps=4),
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    records = log(tmp_path / "ddp")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert INSTRUCTOR(tmp_path / "ddp", device="cpu").get_sentence_embedding_dimension() == 384
    # The same command again, without --resume: every rank refuses at once (none waits in a collective).
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode != 0 and "already holds a run" in again.stderr
    assert log(tmp_path / "ddp") == records


@pytest.mark.slow
def test_a_trained_model_keeps_the_base_models_window(minilm_dir, medi_file, tmp_path):
    """all-MiniLM-L6-v2 is configured for 256 tokens; training without --max-seq-length must not save 512."""
    settings = config(minilm_dir, medi_file, tmp_path / "run", max_steps=1, save_steps=1)
    output = train(TrainConfig(**{**settings.__dict__, "max_seq_length": None}))
    assert json.loads((output / "sentence_bert_config.json").read_text())["max_seq_length"] == 256


def test_an_existing_run_is_refused_before_the_model_loads(medi_file, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_log.jsonl").write_text('{"step": 1}\n')
    absent = tmp_path / "no-model-here"  # were the model loaded first, this would be the error
    with pytest.raises(InputError, match="already holds a run"):
        train(TrainConfig(model=str(absent), data=str(medi_file), output_dir=str(tmp_path / "run")))
    with pytest.raises(InputError, match="--resume: no complete checkpoint"):
        train(TrainConfig(model=str(absent), data=str(medi_file), output_dir=str(tmp_path / "run"), resume=True))


@pytest.mark.slow
def test_batches_larger_than_every_task_are_a_clean_cli_error(minilm_dir, medi_file, tmp_path):
    process = _run_cli([*_cli_args(minilm_dir, medi_file, tmp_path / "big"), "--batch-size", "100"])
    assert process.wait(timeout=120) == 2
    error = process.stderr.read()
    assert "no task has 100 examples" in error and "lower --batch-size" in error and "Traceback" not in error


@pytest.mark.slow
def test_invalid_rows_stop_the_cli_with_line_numbers(minilm_dir, medi_file, tmp_path):
    with open(medi_file, "a") as handle:
        handle.write(json.dumps({"query": ["i", "q"], "pos": ["i", "p"], "task_name": "qa"}) + "\n")
    process = _run_cli(_cli_args(minilm_dir, medi_file, tmp_path / "bad"))
    assert process.wait(timeout=120) == 2
    error = process.stderr.read()
    assert "line 17: field 'neg' is missing" in error and "--skip-invalid" in error


@pytest.mark.slow
def test_the_ablation_knobs_shape_what_is_trained_and_are_recorded(minilm_dir, medi_file, tmp_path):
    """--instructions none, --max-rows-per-task and --task-weights: a task of weight 0 is never drawn, and
    task_mix.json in the output says what the run trained on."""
    output = train(
        config(
            minilm_dir, medi_file, tmp_path / "run", max_steps=4, save_steps=4,
            instructions="none", max_rows_per_task=6, task_weights="sts=0, qa=1.5",
        )
    )  # fmt: skip
    assert {record["task"] for record in log(output)} == {"qa"}
    mix = json.loads((output / "task_mix.json").read_text())
    assert mix["instructions"] == "none" and mix["max_rows_per_task"] == 6
    shape = {
        task: {k: entry[k] for k in ("rows", "weight", "batches_per_epoch")} for task, entry in mix["tasks"].items()
    }
    assert shape == {
        "qa": {"rows": 6, "weight": 1.5, "batches_per_epoch": 4},  # 3 full batches of 2, times 1.5 (rounded)
        "sts": {"rows": 6, "weight": 0.0, "batches_per_epoch": 0},
    }
    assert mix["tasks"]["qa"]["format"] == "medi" and mix["tasks"]["qa"]["file"] == str(medi_file)
    assert mix["tasks"]["qa"]["instructions"] == {"query": "", "document": ""}
    with pytest.raises(InputError, match="task_weights: 'qa' is not TASK=WEIGHT"):
        train(config(minilm_dir, medi_file, tmp_path / "bad", task_weights="qa"))


@pytest.mark.slow
def test_gradcache_with_cross_process_negatives_gives_the_plain_gradients(minilm_dir, medi_file):
    """Two CPU processes: the cached step's loss is gathered too, and its backward sends each process the
    gradient of its own rows, so the gradients equal the uncached gathered step's."""
    script = Path(__file__).with_name("gathered_cache_check.py")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541",
        str(script), str(minilm_dir), str(medi_file),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK rank 0" in result.stdout and "OK rank 1" in result.stdout


def test_float16_autocast_keeps_t5_wo_in_float32(tiny_t5_dir):
    """Under autocast every Linear would run in half precision, T5's wo too (whose activations overflow float16);
    the modules transformers keeps in float32 stay float32. Checked on CPU with bfloat16 autocast."""
    from instructor_embed.training.mixed_precision import keep_float32_modules

    model = INSTRUCTOR(tiny_t5_dir, device="cpu")
    encoder = model.transformer.auto_model
    dtypes: dict[str, torch.dtype] = {}
    for name, module in encoder.named_modules():
        if name.endswith((".wo", ".q")):
            module.register_forward_hook(lambda m, i, o, name=name: dtypes.__setitem__(name, o.dtype))
    features = model.instruction_tokenizer.collate(model.instruction_tokenizer.tokenize([Item("Represent: ", "a")]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(dict(features))
    assert {dtypes[n] for n in dtypes if n.endswith(".wo")} == {torch.bfloat16}  # what autocast does alone
    kept = keep_float32_modules(encoder, "cpu")
    assert kept and all(name.endswith("DenseReluDense.wo") for name in kept)
    dtypes.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        vectors = model(dict(features))["sentence_embedding"]
    assert {dtypes[n] for n in dtypes if n.endswith(".wo")} == {torch.float32}
    assert {dtypes[n] for n in dtypes if n.endswith(".q")} == {torch.bfloat16}  # the rest still autocasts
    assert torch.isfinite(vectors).all()
    copy = deepcopy(encoder)  # a copy (as LoRA's save makes) runs its own weights, still in float32
    wo = next(m for n, m in copy.named_modules() if n.endswith(".wo"))
    with torch.no_grad():
        wo.weight.zero_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = wo(torch.ones(2, wo.in_features, dtype=torch.bfloat16))
    assert output.dtype == torch.float32 and not output.any()
