"""dtype / int8 / ONNX Runtime / torch.compile: same API, accuracy close to float32."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor_embed import INSTRUCTOR, InputError, onnx_int8

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


def test_float16_keeps_the_modules_transformers_keeps_in_float32(tiny_t5_dir, reference):
    """Defect: .to(float16) cast T5's feed-forward output (wo) too, whose activations overflow float16."""
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", dtype="float16")
    dtypes = {name: p.dtype for name, p in model.transformer.auto_model.named_parameters()}
    assert {d for n, d in dtypes.items() if n.endswith("wo.weight")} == {torch.float32}
    assert {d for n, d in dtypes.items() if n.endswith(("wi.weight", "q.weight"))} == {torch.float16}
    assert cosines(model.encode(ITEMS), reference).min() >= 0.999


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


def test_onnx_runs_on_the_device_asked_for_whatever_providers_are_installed(tiny_t5_dir, tmp_path, monkeypatch):
    """Defect: the CUDA provider was used whenever installed, whatever the device, and /info said cpu."""
    ort = pytest.importorskip("onnxruntime")
    from instructor_embed import backends

    available = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *available])
    opened = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: opened.append(k["providers"]) or real(*a, **k))
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", cache_folder=tmp_path)
    model.encode(ITEMS)
    assert opened[-1] == ["CPUExecutionProvider"] and str(model.device) == "cpu"
    monkeypatch.setattr(ort, "get_available_providers", lambda: available)
    with pytest.raises(InputError, match="onnxruntime-gpu"):
        backends._onnx_session(Path("unused.onnx"), torch.device("cuda", 1), None)


def test_onnx_export_never_touches_another_process_partial_file(tiny_t5_dir, tmp_path, reference, monkeypatch):
    """Two processes exporting one checkpoint each write under a name of their own, then rename atomically."""
    pytest.importorskip("onnxruntime")
    from instructor_embed import hardware

    int8_name = f"encoder-{onnx_int8.RECIPE}" + (
        "" if hardware.detect().native_int8 else "-reduce-range"
    )  # this CPU's recipe
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
        ["encoder.onnx", f"{int8_name}.onnx", f"{int8_name}.json"] + [p.name for p in theirs]
    )
    assert cosines(model.encode(ITEMS), reference).min() >= 0.99


def test_onnx_int8(tiny_t5_dir, tmp_path, reference):
    pytest.importorskip("onnxruntime")
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", quantize="int8", cache_folder=tmp_path)
    assert "int8, backend=onnx" in repr(model)
    assert re.search(r"int8 on (\d+) of \1 matrix products, check cosine min 0\.9\d+", repr(model[0]))
    assert cosines(model.encode(ITEMS), reference).min() >= 0.99
    with pytest.raises(InputError, match="Cannot save an encoder running as int8, backend=onnx"):
        model.save(tmp_path / "saved")


@pytest.mark.parametrize(("flags", "reduce_range"), [("avx2 fma", True), ("avx2 fma avx512f avx512_vnni", False)])
def test_int8_weights_are_7_bit_where_the_cpu_lacks_vnni(tiny_t5_dir, tmp_path, monkeypatch, flags, reduce_range):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("INSTRUCTOR_EMBED_CPU_FLAGS", flags)
    INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", quantize="int8", cache_folder=tmp_path)
    (report,) = (tmp_path / "onnx").glob("*/encoder-int8-*.json")
    recipe = onnx_int8.RECIPE
    assert report.name == (f"encoder-{recipe}-reduce-range.json" if reduce_range else f"encoder-{recipe}.json")
    assert onnx_int8.Int8Report.read(report).reduce_range is reduce_range
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(report.with_suffix(".onnx"))).graph
    codes = [numpy_helper.to_array(init) for init in graph.initializer if init.data_type == onnx.TensorProto.INT8]
    assert codes and max(int(np.abs(code.astype(np.int16)).max()) for code in codes) == (63 if reduce_range else 127)


def test_int8_of_a_graph_past_the_protobuf_limit_keeps_its_weights_beside_it(tiny_t5_dir, tmp_path, monkeypatch):
    """instructor-xl's float32 graph (about 4.8 GB) cannot be one protobuf message: the activation probe and the
    int8 file then keep their weights in a ``.data`` file (the limit lowered here, so the tiny T5 takes that path)."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(onnx_int8, "PROTOBUF_LIMIT", 1)
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", quantize="int8", cache_folder=tmp_path)
    (data,) = (tmp_path / "onnx").glob(f"*/encoder-{onnx_int8.RECIPE}*.onnx.data")
    assert data.stat().st_size > 0 and model[0].auto_model.int8.faithful
    monkeypatch.undo()
    again = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", quantize="int8", cache_folder=tmp_path)
    assert np.abs(again.encode(ITEMS) - model.encode(ITEMS)).max() <= 1e-6


def test_int8_vectors_do_not_depend_on_the_batch(tiny_t5_dir, tmp_path):
    """Activation scales per token: an input's int8 vector is the same alone and beside a long, loud input (with
    one scale per batch, the previous recipe, cosine between the two fell to 0.9865 on real weights)."""
    pytest.importorskip("onnxruntime")
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", quantize="int8", cache_folder=tmp_path)
    loud = "!!! 1000000 EXTREME " * 40
    alone = model.encode(ITEMS, batch_size=1)
    beside = model.encode([*ITEMS, loud], batch_size=len(ITEMS) + 1)[: len(ITEMS)]
    assert np.abs(alone - beside).max() <= 1e-5


def test_int8_keeps_products_in_float32_until_the_check_passes(tiny_t5_dir, tmp_path, monkeypatch, reference):
    """A checkpoint int8 would break: T5's feed-forward outputs (wo) go back to float32, then a warning."""
    pytest.importorskip("onnxruntime")
    tries = []
    real = onnx_int8._cosines
    monkeypatch.setattr(onnx_int8, "_cosines", lambda a, b: tries.append(1) or real(a, b) - 0.1)
    with pytest.warns(UserWarning, match=r"int8 may not be faithful .* reached only min 0\.\d+"):
        model = INSTRUCTOR(tiny_t5_dir, device="cpu", backend="onnx", quantize="int8", cache_folder=tmp_path)
    report = model[0].auto_model.int8
    assert len(tries) == 2  # all products int8, then wo (T5's fragile module, every feed-forward output) in float32
    assert report.kept_float and all("/wo/" in name for name in report.kept_float)
    assert report.quantized == 5 * len(report.kept_float)  # q, k, v, o and wi stay int8 in each block
    assert cosines(model.encode(ITEMS), reference).min() >= 0.99


def test_int8_fallback_steps_for_an_encoder_without_fragile_modules():
    products = [
        (f"/encoder/layer.{i}/{name}/MatMul", shape)
        for i in range(2)
        for name, shape in [("query", (8, 8)), ("intermediate/dense", (8, 32)), ("output/dense", (32, 8))]
    ]
    steps = onnx_int8._fallback_steps(products, keep_float_modules=())
    assert steps == [set(), {"/encoder/layer.0/output/dense/MatMul"}, {products[2][0], products[5][0]}]


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
