"""Loading a checkpoint never runs code from it, and every damaged file is a CheckpointError naming the file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from instructor_embed import INSTRUCTOR, CheckpointError


class Payload:
    """Unpickled, it would create ``MARKER``: a stand-in for arbitrary code in a pickle."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def copy(tiny_t5_dir, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_t5_dir, tmp_path / "model"))


def payload(tmp_path) -> tuple[Payload, Path]:
    marker = tmp_path / "code-ran"
    evil = Payload()
    evil.marker = str(marker)
    return evil, marker


def test_a_pickle_payload_in_the_dense_weights_never_runs(tiny_t5_dir, tmp_path):
    model = copy(tiny_t5_dir, tmp_path)  # its Dense folder ships pytorch_model.bin, as the hkunlp checkpoints do
    evil, marker = payload(tmp_path)
    torch.save({"linear.weight": evil}, model / "2_Dense" / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="2_Dense/pytorch_model.bin"):
        INSTRUCTOR(model, device="cpu")
    assert not marker.exists()


def test_a_pickle_payload_in_the_encoder_weights_never_runs(tiny_t5_dir, tmp_path):
    model = copy(tiny_t5_dir, tmp_path)
    (model / "model.safetensors").unlink()
    evil, marker = payload(tmp_path)
    torch.save({"shared.weight": evil}, model / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=str(model)):
        INSTRUCTOR(model, device="cpu")
    assert not marker.exists()


def test_remote_code_named_by_the_config_never_runs(tiny_t5_dir, tmp_path):
    model = copy(tiny_t5_dir, tmp_path)
    marker = tmp_path / "code-ran"
    (model / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nEvilModel = None\n")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilModel"}
    (model / "config.json").write_text(json.dumps(config))
    try:
        INSTRUCTOR(model, device="cpu")  # the known model type loads, ignoring the code
    except CheckpointError as error:
        assert str(model) in str(error)
    assert not marker.exists()


def test_a_bit_flipped_safetensors_header_names_the_file(tiny_t5_dir, tmp_path):
    model = copy(tiny_t5_dir, tmp_path)
    data = bytearray((model / "model.safetensors").read_bytes())
    data[20] ^= 0x40  # inside the JSON header
    (model / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        INSTRUCTOR(model, device="cpu")


@pytest.mark.parametrize("folder", ["", "2_Dense"])
def test_non_finite_weights_are_refused_naming_the_folder(tiny_t5_dir, tmp_path, folder):
    """A flipped exponent bit in the data itself, which safetensors (no checksum) cannot see, makes inf or NaN."""
    model = copy(tiny_t5_dir, tmp_path)
    path = model / folder / ("model.safetensors" if not folder else "pytorch_model.bin")
    weights = load_file(path) if not folder else torch.load(path, weights_only=True)
    name = sorted(weights)[0]
    weights[name].view(-1)[3] = float("inf")
    save_file(weights, str(path)) if not folder else torch.save(weights, path)
    with pytest.raises(CheckpointError, match=f"{model / folder}.*NaN or infinite"):
        INSTRUCTOR(model, device="cpu")


def test_encoder_weights_of_the_wrong_shape_name_the_folder(tiny_t5_dir, tmp_path):
    model = copy(tiny_t5_dir, tmp_path)
    weights = load_file(model / "model.safetensors")
    name = next(key for key in sorted(weights) if key.endswith("SelfAttention.q.weight"))
    weights[name] = torch.zeros(3, 5)
    save_file(weights, str(model / "model.safetensors"))
    with pytest.raises(CheckpointError, match=str(model)):
        INSTRUCTOR(model, device="cpu")


@pytest.mark.parametrize("missing", ["config.json", "2_Dense/config.json", "1_Pooling/config.json", "modules.json"])
def test_a_missing_file_is_named(tiny_t5_dir, tmp_path, missing):
    model = copy(tiny_t5_dir, tmp_path)
    (model / missing).unlink()
    if missing == "modules.json":  # without it the folder is read as a plain encoder: mean pooling, no Dense
        assert INSTRUCTOR(model, device="cpu").get_sentence_embedding_dimension() == 64
        return
    with pytest.raises(CheckpointError, match=missing.split("/")[-1]):
        INSTRUCTOR(model, device="cpu")
