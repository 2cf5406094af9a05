"""Fine-tuning on the data users have: each format trains on real data with the real MiniLM weights, the model
folder keeps its instructions and model card, and evaluation, --keep-best and --save-total-limit work in the loop."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file
from support import shared_path

from instructor_embed import INSTRUCTOR, InputError
from instructor_embed.instructions import InstructionPair
from instructor_embed.training.loop import TrainConfig, train

pytest.importorskip("accelerate")

QUERY = "Represent the banking question for retrieving a matching question: "
DOCUMENT = "Represent the banking question for retrieval: "


def banking_rows(count: int, seed: int = 0) -> list[dict]:
    rows = list(csv.DictReader(open(shared_path("data/classification/banking77/train.csv"), encoding="utf-8")))
    random.Random(seed).shuffle(rows)
    return rows[:count]


def stsb_rows(split: str, count: int) -> list[dict]:
    lines = shared_path(f"data/sts/stsbenchmark/sts-{split}.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines[:count]]
    return [{"sentence1": r[5], "sentence2": r[6], "score": r[4]} for r in rows]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def data_of(fmt: str, folder: Path) -> Path:
    """A small real training file of each format."""
    if fmt == "labelled":
        return write_csv(
            folder / "intents.csv", [{"text": r["text"], "label": r["category"]} for r in banking_rows(400)]
        )
    if fmt == "scored":
        return write_csv(folder / "stsb.csv", stsb_rows("train", 64))
    if fmt == "labelled-pairs":
        rows = [r for r in stsb_rows("train", 400) if float(r["score"]) >= 4 or float(r["score"]) <= 1]
        return write_csv(
            folder / "dup.csv",
            [
                {"sentence1": r["sentence1"], "sentence2": r["sentence2"], "label": int(float(r["score"]) >= 4)}
                for r in rows
            ],
        )
    by_label: dict[str, list[str]] = {}
    for row in banking_rows(2000):
        by_label.setdefault(row["category"], []).append(row["text"])
    labels = [label for label, texts in by_label.items() if len(texts) >= 3][:40]
    rows = [  # question -> another of its intent; 0, 1 or 2 hard negatives from the next intents
        {
            "anchor": by_label[label][0],
            "positive": by_label[label][1],
            "negatives": [by_label[labels[(i + k) % len(labels)]][2] for k in range(1, 1 + i % 3)],
        }
        for i, label in enumerate(labels)
    ]
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def settings(minilm_dir, data, output, **overrides) -> TrainConfig:
    base = dict(
        model=str(minilm_dir),
        data=(str(data),),
        output_dir=str(output),
        batch_size=4,
        max_steps=6,
        learning_rate=5e-5,
        cl_temperature=0.05,
        save_steps=3,
        logging_steps=1,
        max_seq_length=48,
        query_instruction=QUERY,
        document_instruction=DOCUMENT,
        seed=2,
        show_progress=False,
    )
    return TrainConfig(**{**base, **overrides})


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["labelled", "scored", "labelled-pairs", "pairs"])
def test_each_format_trains_and_the_model_keeps_its_instructions(minilm_dir, tmp_path, fmt):
    data = data_of(fmt, tmp_path)
    output = train(settings(minilm_dir, data, tmp_path / "run", query_max_length=32))
    records = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["loss"]) for r in records)
    assert records[0]["loss"] > 0 or fmt in ("scored", "labelled-pairs")  # CoSENT is 0 only when a batch ties
    mix = json.loads((output / "task_mix.json").read_text())
    assert mix["tasks"][data.stem]["format"] == fmt
    model = INSTRUCTOR(output, device="cpu")
    assert model.instructions.tasks[data.stem].query == QUERY
    assert model.instructions.default.corpus == DOCUMENT
    texts = ["I still have not received my new card."]
    np.testing.assert_allclose(model.encode_queries(texts), model.encode([[QUERY, texts[0]]]), atol=1e-6)
    np.testing.assert_allclose(model.encode_corpus(texts), model.encode([[DOCUMENT, texts[0]]]), atol=1e-6)
    assert not np.allclose(model.encode_queries(texts, instruction=None), model.encode_queries(texts))
    card = (output / "README.md").read_text()
    assert f"| {data.stem} | {fmt} |" in card and QUERY.strip() in card
    before = INSTRUCTOR(minilm_dir, device="cpu").encode([[QUERY, texts[0]]])
    assert not np.allclose(before, model.encode([[QUERY, texts[0]]]), atol=1e-4)  # the weights did change


@pytest.mark.slow
def test_the_cli_evaluates_keeps_the_best_checkpoint_and_writes_the_model_card(minilm_dir, tmp_path):
    """Labelled Banking77 texts as they come (text, category), evaluated on a slice of STS-B test before,
    every 2 steps and at the end; --keep-best: the final model is the best checkpoint; --save-total-limit 1."""
    data = write_csv(
        tmp_path / "intents.csv", [{"text": r["text"], "category": r["category"]} for r in banking_rows(600)]
    )
    write_csv(tmp_path / "sts_test.csv", stsb_rows("test", 120))
    spec = {"name": "STSBSlice", "type": "sts", "test": "sts_test.csv", "instruction": "Represent the sentence: "}
    (tmp_path / "sts.json").write_text(json.dumps(spec))
    output = tmp_path / "run"
    command = [
        sys.executable, "-m", "instructor_embed", "train", "--model", str(minilm_dir), "--data", str(data),
        "--columns", "label=category", "--instruction", QUERY, "--output-dir", str(output), "--batch-size", "8",
        "--max-steps", "8", "--save-steps", "2", "--eval", str(tmp_path / "sts.json"), "--eval-steps", "2",
        "--keep-best", "STSBSlice", "--save-total-limit", "1", "--max-seq-length", "48", "--learning-rate", "1e-4",
        "--quiet",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| STSBSlice |" in result.stderr and "before (step 0)" in result.stderr
    history = [json.loads(line) for line in (output / "eval_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history] == [0, 2, 4, 6, 8]
    assert all(0 < r["scores"]["STSBSlice"] <= 1 and r["metric"] == r["scores"]["STSBSlice"] for r in history)
    best = max(history[1:], key=lambda r: r["metric"])["step"]
    kept = sorted(p.name for p in output.glob("checkpoint-*"))
    assert kept == sorted({f"checkpoint-{best}", "checkpoint-8"})
    final, chosen = load_file(output / "model.safetensors"), load_file(output / f"checkpoint-{best}/model.safetensors")
    assert final.keys() == chosen.keys() and all((final[k] == chosen[k]).all() for k in final)
    state = json.loads((output / f"checkpoint-{max(best, 8)}/trainer_state.json").read_text())
    assert state["eval"]["best"]["step"] == best
    model = INSTRUCTOR(output, device="cpu")
    assert model.instructions.default.query == QUERY
    card = (output / "README.md").read_text()
    assert "base_model: " + str(minilm_dir) in card
    assert "| intents | labelled |" in card and "| STSBSlice |" in card
    assert "before (step 0) | after (step 8)" in card
    assert "--keep-best STSBSlice" in card and "Hardware: " in card
    assert (output / "scores.png").stat().st_size > 1000 or not _has_matplotlib()


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_keep_best_needs_an_evaluation_at_every_candidate(minilm_dir, tmp_path):
    with pytest.raises(InputError, match="keep_best needs eval tasks"):
        settings(minilm_dir, "x.csv", tmp_path, keep_best="average").validate()
    with pytest.raises(InputError, match=r"eval_steps \(3\) to be a multiple of save_steps \(2\)"):
        settings(minilm_dir, "x.csv", tmp_path, keep_best="average", eval=("t",), eval_steps=3, save_steps=2).validate()


def test_fp16_on_a_machine_without_cuda_is_refused_clearly(minilm_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data = write_csv(tmp_path / "sts.csv", [{"sentence1": "a", "sentence2": "b", "score": 1}] * 8)
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU"):
        train(settings(minilm_dir, data, tmp_path / "run", mixed_precision="fp16"))


def test_the_tracker_resumes_with_the_evaluations_up_to_the_checkpoint(tmp_path):
    from instructor_embed.training.tracking import EVAL_LOG, EvalTracker

    log = tmp_path / EVAL_LOG
    lines = [json.dumps({"step": s, "scores": {"t": s / 10}, "metric": s / 10}) for s in (0, 2, 4)]
    log.write_text("\n".join(lines) + '\n{"step": 6, "sco')  # the kill cut the last line short
    tracker = EvalTracker(TrainConfig(model="m", data="d", output_dir=str(tmp_path)), tmp_path)
    tracker.restore({"best": {"step": 2, "metric": 0.2}}, step=2)
    assert [r["step"] for r in tracker.history] == [0, 2] and tracker.best_step == 2
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [0, 2]
    assert not tracker.consider({"step": 0, "metric": 9.0})  # the base model is never "the best checkpoint"
    assert tracker.consider({"step": 4, "metric": 0.3}) and tracker.best_step == 4


@pytest.mark.slow
def test_the_cli_trains_a_folder_of_tasks_in_different_formats(minilm_dir, tmp_path):
    """A folder: STS-B pairs with scores (CoSENT) and FAQ-style pairs with hard negatives, one task per file;
    every batch stays within its task and takes that task's loss."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    data_of("scored", folder)
    data_of("pairs", folder)
    output = tmp_path / "run"
    command = [
        sys.executable, "-m", "instructor_embed", "train", "--model", str(minilm_dir), "--data", str(folder),
        "--query-instruction", QUERY, "--document-instruction", DOCUMENT, "--output-dir", str(output),
        "--batch-size", "4", "--max-steps", "8", "--save-steps", "8", "--logging-steps", "1",
        "--max-seq-length", "48", "--seed", "4", "--quiet",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert {r["task"] for r in records} == {"stsb", "pairs"} and all(np.isfinite(r["loss"]) for r in records)
    mix = json.loads((output / "task_mix.json").read_text())
    assert {task: entry["format"] for task, entry in mix["tasks"].items()} == {"stsb": "scored", "pairs": "pairs"}
    assert INSTRUCTOR(output, device="cpu").instructions.default == InstructionPair(QUERY, DOCUMENT)


def test_matryoshka_averages_the_loss_over_leading_dimensions(minilm_dir):
    import torch

    from instructor_embed.training.loop import Layout, embedding_loss

    generator = torch.Generator().manual_seed(5)
    embeddings = torch.randn(12, 32, generator=generator)
    scores = torch.tensor([1.0, 3.0, 2.0, 0.5])
    for layout in (Layout("instructor", 4, 4), Layout("in-batch", 4, 2), Layout("cosent", 4, 0)):
        plain = settings(minilm_dir, "x.csv", "unused")
        nested = settings(minilm_dir, "x.csv", "unused", matryoshka_dims=(32, 16, 4))
        parts = [embedding_loss(embeddings[:, :d], layout, scores, plain) for d in (32, 16, 4)]
        torch.testing.assert_close(embedding_loss(embeddings, layout, scores, nested), torch.stack(parts).mean())
    with pytest.raises(InputError, match="matryoshka_dims must be positive integers"):
        settings(minilm_dir, "x.csv", "unused", matryoshka_dims=(0,)).validate()


@pytest.mark.slow
def test_matryoshka_training_runs_and_refuses_dimensions_the_model_lacks(minilm_dir, tmp_path):
    data = data_of("scored", tmp_path)
    output = train(settings(minilm_dir, data, tmp_path / "run", max_steps=3, matryoshka_dims=(384, 128, 32)))
    assert "| matryoshka_dims | (384, 128, 32) |" in (output / "README.md").read_text()
    assert INSTRUCTOR(output, device="cpu", truncate_dim=32).encode(["a card"]).shape == (1, 32)
    with pytest.raises(InputError, match=r"matryoshka_dims \[512\] exceed the model's 384 dimensions"):
        train(settings(minilm_dir, data, tmp_path / "wide", matryoshka_dims=(512, 64)))


def test_the_tracker_scores_a_model_named_by_a_path(minilm_dir, tmp_path):
    """A TrainConfig whose model is a Path (as get_model_path() returns) crashed mteb's model metadata."""
    pytest.importorskip("mteb")
    from instructor_embed.training.tracking import EvalTracker

    write_csv(tmp_path / "sts_test.csv", stsb_rows("test", 40))
    spec = {"name": "STSBTiny", "type": "sts", "test": "sts_test.csv"}
    (tmp_path / "sts.json").write_text(json.dumps(spec))
    config = TrainConfig(model=Path(minilm_dir), data="d", output_dir=str(tmp_path), eval=(str(tmp_path / "sts.json"),))
    record = EvalTracker(config, tmp_path).evaluate(INSTRUCTOR(minilm_dir, device="cpu"), 0)
    assert 0 < record["scores"]["STSBTiny"] <= 1 and record["seconds"] >= 0
