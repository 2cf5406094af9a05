"""Where models come from (paths, PathLike, the Hub cache) and the errors for missing or broken ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from instructor_embed import INSTRUCTOR, CheckpointError, InputError, InputTypeError, Item, ModelNotFoundError

TEXT = [["Represent the Science title:", "3D ActionSLAM"]]


def test_str_and_pathlike_load_the_same(tiny_t5_dir, tiny_model):
    from_str = INSTRUCTOR(str(tiny_t5_dir), device="cpu").encode(TEXT)
    from_path = INSTRUCTOR(Path(tiny_t5_dir), device="cpu").encode(TEXT)
    np.testing.assert_array_equal(from_str, from_path)
    np.testing.assert_array_equal(from_str, tiny_model.encode(TEXT))


def test_pytorch_model_bin_checkpoint(tmp_path, t5_tokenizer_dir, tiny_model):
    """The hkunlp checkpoints ship pytorch_model.bin rather than safetensors."""
    from instructor_embed.testing import build_random_instructor

    build_random_instructor(tmp_path, t5_tokenizer_dir, size="tiny", seed=0, weights_format="bin")
    assert (tmp_path / "pytorch_model.bin").exists() and not (tmp_path / "model.safetensors").exists()
    np.testing.assert_array_equal(INSTRUCTOR(tmp_path, device="cpu").encode(TEXT), tiny_model.encode(TEXT))


def test_plain_hugging_face_directory_gets_mean_pooling(minilm_dir, tmp_path):
    """No modules.json: Transformer + mean pooling, no Dense, no Normalize."""
    for name in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ]:
        shutil.copy(minilm_dir / name, tmp_path / name)
    plain = INSTRUCTOR(tmp_path, device="cpu")
    assert [type(stage).__name__ for stage in plain] == ["Transformer", "Pooling"]
    vectors = plain.encode(["a dog runs", "a cat sleeps"], normalize_embeddings=True)
    reference = INSTRUCTOR(minilm_dir, device="cpu").encode(["a dog runs", "a cat sleeps"])  # + Normalize
    np.testing.assert_allclose(vectors, reference, atol=1e-5)


def test_sentence_transformers_config_is_honoured(minilm_model):
    assert minilm_model.max_seq_length == 256  # from sentence_bert_config.json
    assert minilm_model.get_sentence_embedding_dimension() == 384


def _hub_cache(tmp_path: Path, checkpoint: Path, repo: str = "hkunlp/instructor-tiny") -> Path:
    """A Hugging Face cache holding ``repo`` at revision main, laid out as huggingface_hub writes it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(checkpoint, root / "snapshots" / commit)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return tmp_path / "hub"


def _run_offline(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_hub_id_loads_from_cache_offline(tmp_path, tiny_t5_dir, tiny_model):
    cache = _hub_cache(tmp_path, tiny_t5_dir)
    result = _run_offline(
        "import numpy as np\nfrom instructor_embed import INSTRUCTOR\n"
        f"m = INSTRUCTOR('hkunlp/instructor-tiny', cache_folder={str(cache)!r}, device='cpu')\n"
        f"np.save({str(tmp_path / 'v.npy')!r}, m.encode({TEXT!r}))\n"
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), tiny_model.encode(TEXT))


def test_offline_missing_hub_model_says_so(tmp_path, tiny_t5_dir):
    cache = _hub_cache(tmp_path, tiny_t5_dir)
    result = _run_offline(
        "from instructor_embed import INSTRUCTOR\n"
        f"INSTRUCTOR('hkunlp/instructor-tiny', cache_folder={str(cache)!r}, revision='v9')\n"
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ModelNotFoundError" in last and "'hkunlp/instructor-tiny'" in last
    assert "HF_HUB_OFFLINE is set" in last and "revision 'v9'" in last and "local directory" in last


@pytest.mark.parametrize("name", ["./no/such/dir", "/no/such/dir"])
def test_missing_local_path_is_named(name):
    with pytest.raises(ModelNotFoundError, match="No model directory at"):
        INSTRUCTOR(name)


def test_missing_pathlike_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "absent")):
        INSTRUCTOR(tmp_path / "absent")


def test_invalid_hub_id_is_named():
    with pytest.raises(ModelNotFoundError, match="neither a local directory nor a valid Hub id"):
        INSTRUCTOR("not a valid id!!")


def test_wrong_type_of_name():
    with pytest.raises(InputTypeError, match="model_name_or_path"):
        INSTRUCTOR(123)


def _broken_copy(tiny_t5_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "broken"
    shutil.copytree(tiny_t5_dir, target)
    return target


def test_truncated_weights_name_the_file(tiny_t5_dir, tmp_path):
    path = _broken_copy(tiny_t5_dir, tmp_path)
    with open(path / "model.safetensors", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(CheckpointError, match=str(path / "model.safetensors")):
        INSTRUCTOR(path, device="cpu")


def test_partial_weights_are_refused_not_randomly_filled(tiny_t5_dir, tmp_path):
    path = _broken_copy(tiny_t5_dir, tmp_path)
    state = load_file(path / "model.safetensors")
    save_file({k: v for k, v in state.items() if "block.1." not in k}, path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"incomplete: missing \['encoder.block.1"):
        INSTRUCTOR(path, device="cpu")


def test_missing_weights_are_named(tiny_t5_dir, tmp_path):
    path = _broken_copy(tiny_t5_dir, tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        INSTRUCTOR(path, device="cpu")


def test_missing_tokenizer_vocabulary_is_refused(tiny_t5_dir, tmp_path):
    path = _broken_copy(tiny_t5_dir, tmp_path)
    (path / "spiece.model").unlink()
    with pytest.raises(CheckpointError, match="no tokenizer vocabulary"):
        INSTRUCTOR(path, device="cpu")


def test_corrupt_dense_weights_name_the_file(tiny_t5_dir, tmp_path):
    path = _broken_copy(tiny_t5_dir, tmp_path)
    (path / "2_Dense" / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=str(path / "2_Dense" / "pytorch_model.bin")):
        INSTRUCTOR(path, device="cpu")


def test_dense_config_that_does_not_fit_its_weights(tiny_t5_dir, tmp_path):
    path = _broken_copy(tiny_t5_dir, tmp_path)
    config = json.loads((path / "2_Dense" / "config.json").read_text())
    (path / "2_Dense" / "config.json").write_text(json.dumps({**config, "out_features": 100}))
    with pytest.raises(CheckpointError, match="2_Dense do not fit its config.json"):
        INSTRUCTOR(path, device="cpu")


def test_corrupt_modules_json_is_named(tiny_t5_dir, tmp_path):
    path = _broken_copy(tiny_t5_dir, tmp_path)
    (path / "modules.json").write_text("[{")
    with pytest.raises(CheckpointError, match=str(path / "modules.json")):
        INSTRUCTOR(path, device="cpu")


def test_unsupported_module_is_named(tiny_t5_dir, tmp_path):
    path = _broken_copy(tiny_t5_dir, tmp_path)
    modules = json.loads((path / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "lstm", "path": "2_LSTM", "type": "sentence_transformers.models.LSTM"})
    for position, entry in enumerate(modules):
        entry["idx"] = position
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(CheckpointError, match="'sentence_transformers.models.LSTM' is not supported"):
        INSTRUCTOR(path, device="cpu")


def test_empty_directory(tmp_path):
    with pytest.raises(CheckpointError, match="neither modules.json nor config.json"):
        INSTRUCTOR(tmp_path)


def test_a_missing_pooling_folder_is_named_not_replaced_by_mean_pooling(minilm_dir, tmp_path):
    """all-MiniLM pools by mean, but another model may pool by CLS: guessing would give wrong vectors silently."""
    shutil.copytree(minilm_dir, tmp_path / "m")
    shutil.rmtree(tmp_path / "m" / "1_Pooling")
    with pytest.raises(CheckpointError, match=r"Missing checkpoint folder .*1_Pooling: modules.json lists it"):
        INSTRUCTOR(tmp_path / "m", device="cpu")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks a machine without CUDA")
def test_a_device_this_machine_lacks_is_refused_before_loading(tmp_path):
    absent = tmp_path / "not-loaded"  # the device check comes first: this path is never looked at
    with pytest.raises(InputError, match="'cuda': CUDA is not available here") as caught:
        INSTRUCTOR(absent, device="cuda")
    assert caught.value.param == "device"
    with pytest.raises(InputError, match="is not a device name"):
        INSTRUCTOR(absent, device="gpu0")


@pytest.mark.parametrize(("value", "message"), [(10000, "more than this encoder's 512 positions"), (0, "at least 1")])
def test_max_seq_length_is_checked_against_the_encoder(minilm_dir, value, message):
    with pytest.raises(InputError, match=message):
        INSTRUCTOR(minilm_dir, device="cpu", max_seq_length=value)


def test_max_seq_length_setter_is_checked(minilm_model, tiny_model):
    with pytest.raises(InputError, match="512 positions"):
        minilm_model.max_seq_length = 513
    assert minilm_model.max_seq_length == 256
    original = tiny_model.max_seq_length
    tiny_model.max_seq_length = 1024  # T5's relative positions have no fixed limit
    try:
        assert tiny_model.engine.tokenize([Item(None, "word " * 900)]).token_counts == [901]
    finally:
        tiny_model.max_seq_length = original
