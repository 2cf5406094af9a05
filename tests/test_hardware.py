"""dtype="auto": the fastest faithful mode for the machine, chosen from its features (mocked and real)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from instructor_embed import INSTRUCTOR, InputError
from instructor_embed.hardware import Hardware, choose, detect

ONNX_FLOAT32, TORCH_FLOAT32, BFLOAT16 = (
    ("float32", "onnx", None),
    ("float32", "torch", None),
    ("bfloat16", "torch", None),
)
INT8 = ("float32", "onnx", "int8")


@pytest.mark.parametrize(
    ("flags", "capability", "device", "onnx", "expected", "fallback"),
    [
        ({"avx2", "fma"}, None, "cpu", True, INT8, ONNX_FLOAT32),  # 7-bit weights: no u8*s8 saturation
        ({"avx2", "fma"}, None, "cpu", False, TORCH_FLOAT32, None),
        ({"avx2", "avx512f", "avx512_vnni"}, None, "cpu", True, INT8, ONNX_FLOAT32),
        ({"avx2", "avx512f", "avx512_vnni"}, None, "cpu", False, TORCH_FLOAT32, None),
        ({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}, None, "cpu", True, INT8, BFLOAT16),
        ({"avx2", "avx512f", "avx512_bf16"}, None, "cpu", True, BFLOAT16, None),  # bf16 before 7-bit int8
        ({"avx2", "amx_bf16", "amx_tile"}, None, "cpu", False, BFLOAT16, None),
        ({"sse4_2"}, None, "cpu", True, ONNX_FLOAT32, None),
        ({"asimd", "asimddp"}, None, "cpu", True, ONNX_FLOAT32, None),  # ARM int8: not measured
        (set(), (9, 0), "cuda", True, BFLOAT16, None),
        (set(), (7, 5), "cuda", True, ("float16", "torch", None), None),
        (set(), (6, 1), "cuda", True, TORCH_FLOAT32, None),
    ],
)
def test_the_choice_for_each_kind_of_machine(flags, capability, device, onnx, expected, fallback):
    choice = choose(Hardware(frozenset(flags), capability), device, onnx)
    assert (choice.dtype, choice.backend, choice.quantize) == expected and choice.reason
    # where the checkpoint's int8 misses the bar: the best mode without int8
    actual = choice.fallback and (choice.fallback.dtype, choice.fallback.backend, choice.fallback.quantize)
    assert actual == fallback


@pytest.mark.parametrize(
    ("flags", "fallback"),
    [
        ("avx2 fma", {"dtype": "float32", "backend": "onnx", "quantize": None}),  # 7-bit int8: any x86 with AVX2
        ("avx2 fma avx512f avx512_bf16 avx512_vnni", {"dtype": "bfloat16", "backend": "torch", "quantize": None}),
    ],
)
def test_auto_takes_int8_where_it_passes_the_bar_and_falls_back_where_not(
    monkeypatch, tiny_t5_dir, tmp_path, flags, fallback
):
    pytest.importorskip("onnxruntime")
    from instructor_embed import onnx_int8

    if "avx512_vnni" in flags and not detect().native_int8:
        pytest.skip("8-bit weights saturate in u8*s8 products on a CPU without int8 dot products (this one)")
    monkeypatch.setenv("INSTRUCTOR_EMBED_CPU_FLAGS", flags)
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", dtype="auto", cache_folder=tmp_path)
    assert model[0].runtime.identity() == {"dtype": "float32", "backend": "onnx", "quantize": "int8"}
    assert model[0].auto_model.int8.faithful_for_auto
    monkeypatch.setattr(onnx_int8, "AUTO_MIN_COSINE", 1.01)  # no int8 file reaches it
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", dtype="auto", cache_folder=tmp_path)
    assert model[0].runtime.identity() == fallback
    assert "int8 missed the bar (int8 on" in repr(model)


def test_cpu_features_come_from_a_public_override(monkeypatch, tiny_t5_dir, tmp_path):
    monkeypatch.setenv("INSTRUCTOR_EMBED_CPU_FLAGS", "avx2 fma avx512f avx512_bf16")
    assert detect().native_bf16
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", dtype="auto")
    assert "bfloat16, backend=torch, auto: CPU with avx2, avx512f, avx512_bf16: native bf16" in repr(model)


def test_auto_on_this_machine_is_faithful(tiny_t5_dir, tiny_model, tmp_path):
    model = INSTRUCTOR(tiny_t5_dir, device="cpu", dtype="auto", cache_folder=tmp_path)
    assert "auto: CPU with" in repr(model)
    items = [["Represent the sentence:", "a cat sat on the mat"], "plain text"]
    vectors, reference = model.encode(items), tiny_model.encode(items)
    cosines = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosines.min() >= 0.999


def test_bfloat16_without_native_support_warns_with_what_to_use(monkeypatch, tiny_t5_dir):
    monkeypatch.setenv("INSTRUCTOR_EMBED_CPU_FLAGS", "avx2 fma")
    with pytest.warns(UserWarning, match="no native path .* Use dtype='auto'"):
        INSTRUCTOR(tiny_t5_dir, device="cpu", dtype="bfloat16")


def test_torch_int8_without_int8_dot_products_warns_with_what_to_use(monkeypatch, tiny_t5_dir):
    """torchao's int8 ran at 0.03-0.07x the original on an AVX2-only CPU (benchmarks/results/cpu-x86_64-avx2-fma.md)."""
    pytest.importorskip("torchao")
    monkeypatch.setenv("INSTRUCTOR_EMBED_CPU_FLAGS", "avx2 fma")
    with pytest.warns(UserWarning, match="without int8 dot products .* Use dtype='auto' or backend='onnx'"):
        INSTRUCTOR(tiny_t5_dir, device="cpu", quantize="int8")
    monkeypatch.setenv("INSTRUCTOR_EMBED_CPU_FLAGS", "avx2 fma avx512f avx512_vnni")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        INSTRUCTOR(tiny_t5_dir, device="cpu", quantize="int8")


def test_auto_chooses_the_backend_too(tiny_t5_dir):
    with pytest.raises(InputError, match="dtype='auto' chooses the backend too"):
        INSTRUCTOR(tiny_t5_dir, device="cpu", dtype="auto", quantize="int8")


def test_a_machine_signature_names_benchmark_results():
    import platform

    assert Hardware(frozenset({"fma", "avx2", "sse4_2"})).signature() == f"{platform.machine()}-avx2-fma"
    bf16 = Hardware(frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"}))
    assert bf16.signature() == f"{platform.machine()}-avx2-fma-avx512f-avx512_bf16-avx512_vnni"
    assert Hardware(frozenset(), (9, 0)).signature() == f"{platform.machine()}-baseline-sm90"
