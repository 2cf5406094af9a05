"""dtype / int8 / ONNX Runtime / torch.compile: same API, accuracy close to float32."""

from __future__ import annotations

import numpy as np
import pytest

from instructor_embed import INSTRUCTOR, InputError

ITEMS = [
    ["Represent the Science title:", "3D ActionSLAM: wearable person tracking in multi-floor environments"],
    ["Represent the Medicine sentence for retrieving a duplicate sentence: ", "Aspirin lowers fever."],
    ["Represent the Financial statement: ", "The funds rose less than 0.5 per cent on Friday"],
    "a plain sentence with no instruction",
    "",
] * 3


@pytest.fixture(scope="module")
def reference(tiny_model):
    return tiny_model.encode(ITEMS)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_bfloat16_encoder(tiny_t5_dir, reference):
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", dtype="bfloat16")
    assert "bfloat16" in repr(model)
    out = model.encode(ITEMS)
    assert out.dtype == np.float32
    assert cosines(out, reference).min() >= 0.999


def test_onnx_float32_matches_torch(tiny_t5_dir, tmp_path, reference):
    pytest.importorskip("onnxruntime")
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", cache_folder=tmp_path)
    assert "backend=onnx" in repr(model)
    assert np.abs(model.encode(ITEMS) - reference).max() <= 1e-5
    exported = list((tmp_path / "onnx").glob("*/encoder.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", cache_folder=tmp_path)  # reuses the export
    assert exported[0].stat().st_mtime_ns == stamp


def test_onnx_export_never_touches_another_process_partial_file(tiny_t5_dir, tmp_path, reference):
    """Two processes exporting one checkpoint each write under a name of their own, then rename atomically."""
    pytest.importorskip("onnxruntime")
    INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", cache_folder=tmp_path / "first")
    folder = next((tmp_path / "first" / "onnx").iterdir())
    # Another process is half-way through the same export into the same cache: its files must survive ours.
    shared = tmp_path / "shared" / "onnx" / folder.name
    shared.mkdir(parents=True)
    theirs = [shared / "encoder.partial.onnx", shared / "encoder-int8.partial.onnx"]
    for path in theirs:
        path.write_bytes(b"another process is writing this")
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", quantize="int8", cache_folder=tmp_path / "shared")
    assert all(path.read_bytes() == b"another process is writing this" for path in theirs)
    assert sorted(p.name for p in shared.iterdir()) == sorted(
        ["encoder.onnx", "encoder-int8.onnx"] + [p.name for p in theirs]
    )
    assert cosines(model.encode(ITEMS), reference).min() >= 0.99


def test_onnx_int8(tiny_t5_dir, tmp_path, reference):
    pytest.importorskip("onnxruntime")
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", quantize="int8", cache_folder=tmp_path)
    assert "int8, backend=onnx" in repr(model)
    assert cosines(model.encode(ITEMS), reference).min() >= 0.99
    with pytest.raises(InputError, match="Cannot save an encoder running as int8, backend=onnx"):
        model.save(tmp_path / "saved")


def test_torchao_int8(tiny_t5_dir, reference):
    pytest.importorskip("torchao")
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", quantize="int8")
    assert cosines(model.encode(ITEMS), reference).min() >= 0.99


@pytest.mark.slow
def test_compiled_encoder_gives_the_same_vectors(tiny_t5_dir, reference):
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", compile=True)
    assert np.abs(model.encode(ITEMS) - reference).max() <= 1e-4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "float64"}, "dtype must be one of float32, bfloat16, float16"),
        ({"quantize": "int4"}, "quantize must be None or 'int8'"),
        ({"backend": "tensorrt"}, "backend must be one of"),
        ({"dtype": "bfloat16", "quantize": "int8"}, "leave dtype unset"),
        ({"backend": "onnx", "dtype": "float16"}, "leave dtype unset"),
        ({"backend": "onnx", "compile": True}, "compile=True applies to backend='torch' only"),
        ({"truncate_dim": 0}, "truncate_dim must be at least 1"),
    ],
)
def test_bad_runtime_options(tiny_t5_dir, options, message):
    with pytest.raises(InputError, match=message):
        INSTRUCTOR(tiny_t5_dir, device="cpu", **options)
