"""LoRA fine-tuning through peft: only the adapters train, the saved folder is a plain checkpoint with the adapters
merged (same vectors as the training model), the adapter alone loads on top of the base, and a run resumes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_fine_tuning import QUERY, data_of

from instructor_embed import INSTRUCTOR, InputError
from instructor_embed.tokenization import Item
from instructor_embed.training.config import TrainConfig
from instructor_embed.training.lora import ADAPTER_FOLDER, add_lora, save_model, trainable_parameters

pytest.importorskip("accelerate")
peft = pytest.importorskip("peft")

TEXTS = [[QUERY, "I still have not received my new card."], "How do I top up by bank transfer?"]


def lora_config(**overrides) -> TrainConfig:
    return TrainConfig(model="m", data="d", output_dir="o", **{"lora_rank": 4, **overrides})


def test_only_the_adapters_train_and_a_save_merges_them(minilm_dir, tmp_path):
    model = INSTRUCTOR(minilm_dir, device="cpu")
    total = sum(p.numel() for p in model.parameters())
    add_lora(model, lora_config(lora_target_modules=("query", "value")))
    trainable, counted = trainable_parameters(model)
    # rank 4 on query and value of 6 layers: (384 x 4 + 4 x 384) x 2 x 6 parameters; the base's count unchanged
    assert trainable == 2 * 4 * 384 * 2 * 6 and counted == total + trainable
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in name for name in names)
    with torch.no_grad():  # untrained B is zero: move it so that merging has something to merge
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    model.eval()
    training_vectors = model.encode(TEXTS)
    save_model(model, tmp_path / "saved")
    saved = load_file(tmp_path / "saved" / "model.safetensors")
    assert not any("lora" in key or "base_layer" in key for key in saved)  # plain BERT keys
    reloaded = INSTRUCTOR(tmp_path / "saved", device="cpu")
    np.testing.assert_allclose(reloaded.encode(TEXTS), training_vectors, atol=2e-6)
    base = INSTRUCTOR(minilm_dir, device="cpu")
    assert not np.allclose(base.encode(TEXTS), training_vectors, atol=1e-3)
    # the training model still has its adapters apart (a save does not merge it in place)
    assert any("lora_A" in name for name, _ in model.named_parameters())
    # the adapter alone, on top of the base model, gives the same vectors
    base.transformer.auto_model = peft.PeftModel.from_pretrained(
        base.transformer.auto_model, tmp_path / "saved" / ADAPTER_FOLDER
    )
    np.testing.assert_allclose(base.encode(TEXTS), training_vectors, atol=2e-6)


@pytest.mark.slow
def test_a_lora_run_from_the_cli_changes_only_the_target_modules_and_resumes(minilm_dir, tmp_path):
    data = data_of("labelled", tmp_path)
    output = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "instructor_embed", "train", "--model", str(minilm_dir), "--data", str(data)),
        *("--output-dir", str(output), "--save-steps", "2", "--batch-size", "4", "--max-seq-length", "32"),
        *("--learning-rate", "1e-3", "--logging-steps", "1", "--quiet", "--query-instruction", QUERY),
        *("--lora-rank", "8", "--lora-target-modules", "query", "value", "dense"),
    ]
    subprocess.run([*command, "--max-steps", "2"], check=True, capture_output=True)
    subprocess.run([*command, "--max-steps", "4", "--resume"], check=True, capture_output=True)
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3, 4]
    before, after = load_file(minilm_dir / "model.safetensors"), load_file(output / "model.safetensors")
    changed = {key for key in after if not torch.equal(before[key], after[key])}
    assert changed and all(key.rsplit(".", 2)[-2] in ("query", "value", "dense") for key in changed)
    assert not any("embeddings" in key or "LayerNorm" in key for key in changed)
    card = (output / "README.md").read_text()
    assert "| lora_rank | 8 |" in card and "LoRA (peft): rank 8, alpha 16" in card
    assert json.loads((output / ADAPTER_FOLDER / "adapter_config.json").read_text())["r"] == 8
    assert (output / "checkpoint-2" / ADAPTER_FOLDER / "adapter_config.json").is_file()
    model = INSTRUCTOR(output, device="cpu")
    assert model.instructions.tasks[data.stem].query == QUERY
    assert model.encode(TEXTS).shape == (2, 384)


def test_lora_settings_are_checked_before_anything_loads(minilm_dir, tmp_path):
    with pytest.raises(InputError, match="lora_rank must be at least 1"):
        lora_config(lora_rank=0).validate()
    with pytest.raises(InputError, match="lora_alpha and lora_target_modules need lora_rank"):
        lora_config(lora_rank=None, lora_alpha=8.0).validate()
    with pytest.raises(InputError, match=r"lora_dropout must be in \[0, 1\)"):
        lora_config(lora_dropout=1.0).validate()
    model = INSTRUCTOR(minilm_dir, device="cpu")
    with pytest.raises(InputError, match="LoRA: .*no_such_module"):
        add_lora(model, lora_config(lora_target_modules=("no_such_module",)))


def test_lora_on_t5_with_gradient_checkpointing_gets_gradients(tiny_t5_dir):
    """T5 takes peft's default targets (q, v), and with gradient checkpointing every adapter still gets a gradient
    through the frozen embeddings."""
    model = INSTRUCTOR(tiny_t5_dir, device="cpu")
    model.transformer.auto_model.gradient_checkpointing_enable()
    add_lora(model, lora_config(gradient_checkpointing=True))
    model.train()
    tokenizer = model.instruction_tokenizer
    features = tokenizer.collate(tokenizer.tokenize([Item("Represent the text: ", "a short text")]))
    model(features)["sentence_embedding"].sum().backward()
    adapters = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert adapters and {name.rsplit(".lora_", 1)[0].rsplit(".", 1)[-1] for name in adapters} == {"q", "v"}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for name, p in adapters.items() if "lora_B" in name)
