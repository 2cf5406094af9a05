"""What the machine can do fast, and the fastest faithful mode for it: ``INSTRUCTOR(path, dtype="auto")``.

Measured on this project's machines (README, "Speed"). On a CPU with int8 dot products (VNNI or AMX) and ONNX
Runtime installed: ONNX int8 (recipe ``int8-v3``: per-token activations, smoothed; see ``onnx_int8``), which keeps
cosine >= 0.992 to float32 over every STS-B test sentence on real MiniLM weights — taken only when the checkpoint's
own int8 file passes the check at ``AUTO_MIN_COSINE`` / ``AUTO_MEAN_COSINE``, else the mode below. On a CPU with
AVX512-BF16 (or AMX), bfloat16 runs 2.1-3.4x the original at cosine >= 0.9999. Without either, bf16 matrix products
have no native path (0.16-0.26x the original on an AVX2-only CPU), and on x86 with AVX2 ONNX int8 runs with 7-bit
weights (no u8*s8 saturation): 1.7-2.5x the original on short inputs and 3.0-3.1x on long ones, at cosine >= 0.987
on real weights, against 1.2-2.0x for ONNX Runtime float32, the fastest exact mode and int8's fallback there. On a
GPU: bfloat16 from compute capability 8.0, float16 from 7.0.

``INSTRUCTOR_EMBED_CPU_FLAGS`` (space-separated /proc/cpuinfo flags) overrides what is read from the CPU: for
containers whose cpuinfo is misleading, and for tests.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
NATIVE_INT8 = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")  # int8 dot products without u8*s8 saturation
AUTO_INT8 = ("avx512_vnni", "avx_vnni", "amx_int8")  # where int8 was measured faster than bf16 (x86; ARM: unmeasured)
AUTO_INT8_7BIT = ("avx2",)  # x86 without VNNI: 7-bit int8 measured faster than ONNX float32, and faithful
FLAGS_VARIABLE = "INSTRUCTOR_EMBED_CPU_FLAGS"


@dataclass(frozen=True)
class Hardware:
    """The CPU's instruction-set flags and, when the model runs on a GPU, its compute capability."""

    cpu_flags: frozenset[str]
    cuda_capability: tuple[int, int] | None = None

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.cpu_flags for flag in NATIVE_BF16)

    @property
    def native_int8(self) -> bool:
        return any(flag in self.cpu_flags for flag in NATIVE_INT8)

    @property
    def fast_int8(self) -> bool:
        return any(flag in self.cpu_flags for flag in AUTO_INT8)

    @property
    def fast_7bit_int8(self) -> bool:
        return any(flag in self.cpu_flags for flag in AUTO_INT8_7BIT)

    def signature(self) -> str:
        """A short name for this kind of machine, for benchmark result files: ``x86_64-avx2-fma``."""
        wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile")
        flags = [flag for flag in wanted if flag in self.cpu_flags] or ["baseline"]
        gpu = [f"sm{self.cuda_capability[0]}{self.cuda_capability[1]}"] if self.cuda_capability else []
        return "-".join([platform.machine(), *flags, *gpu])

    def describe(self) -> str:
        if self.cuda_capability:
            return f"CUDA compute capability {self.cuda_capability[0]}.{self.cuda_capability[1]}"
        wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")
        return "CPU with " + (", ".join(flag for flag in wanted if flag in self.cpu_flags) or "no AVX2")


@dataclass(frozen=True)
class Choice:
    """The mode ``dtype="auto"`` picked, and why; for int8, the mode to run instead where the checkpoint's int8
    file misses the fidelity bar."""

    dtype: str
    backend: str
    reason: str
    quantize: str | None = None
    fallback: Choice | None = None


def detect(device_type: str = "cpu", device_index: int | None = None) -> Hardware:
    """The hardware a model on ``device_type`` runs on (CPU flags from ``INSTRUCTOR_EMBED_CPU_FLAGS`` or cpuinfo)."""
    capability = None
    if device_type == "cuda":
        import torch

        capability = tuple(torch.cuda.get_device_capability(device_index))
    return Hardware(frozenset(_cpu_flags()), capability)


def choose(hardware: Hardware, device_type: str, onnx_available: bool) -> Choice:
    """The fastest mode that stays faithful (cosine >= 0.98 to float32 on real weights) on ``hardware``."""
    where = hardware.describe()
    if device_type == "cuda":
        major = (hardware.cuda_capability or (0, 0))[0]
        if major >= 8:
            return Choice("bfloat16", "torch", f"{where}: bf16 tensor cores, float32's range (no fp16 overflow)")
        if major >= 7:
            return Choice("float16", "torch", f"{where}: fp16 tensor cores, no bf16")
        return Choice("float32", "torch", f"{where}: no tensor cores")
    if device_type != "cpu":
        return Choice("float32", "torch", f"{device_type}: float32 (no measurements on this device)")
    without_int8 = _without_int8(hardware, onnx_available)
    if onnx_available and hardware.fast_int8:
        why = f"{where}: int8 dot products; ONNX int8 with per-token scales, checked against float32 on this checkpoint"
        return Choice("float32", "onnx", why, quantize="int8", fallback=without_int8)
    if onnx_available and hardware.fast_7bit_int8 and not hardware.native_bf16:
        why = f"{where}: no native bf16 or int8 dot products; ONNX int8 with 7-bit weights, checked against float32"
        return Choice("float32", "onnx", why, quantize="int8", fallback=without_int8)
    return without_int8


def _without_int8(hardware: Hardware, onnx_available: bool) -> Choice:
    """The fastest mode without int8: where a checkpoint's int8 file misses the fidelity bar."""
    where = hardware.describe()
    if hardware.native_bf16:
        return Choice("bfloat16", "torch", f"{where}: native bf16 matrix products")
    if onnx_available:
        return Choice("float32", "onnx", f"{where}: no native bf16; ONNX Runtime float32 is the fastest exact mode")
    return Choice(
        "float32", "torch", f"{where}: no native bf16 (pip install 'instructor-embed[onnx]' for a faster exact mode)"
    )


def _cpu_flags() -> set[str]:
    override = os.environ.get(FLAGS_VARIABLE)
    if override is not None:
        return set(override.split())
    cpuinfo = Path("/proc/cpuinfo")
    if platform.system() == "Linux" and cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    return set()


def cpu_model() -> str | None:
    """The CPU's model name as /proc/cpuinfo gives it (Linux), else None."""
    cpuinfo = Path("/proc/cpuinfo")
    if platform.system() == "Linux" and cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None
