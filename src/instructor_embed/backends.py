"""How the encoder runs: its precision, int8 quantization, ONNX Runtime, torch.compile.

Chosen once, when a model loads (``INSTRUCTOR(path, dtype=..., quantize=..., backend=...)``).
Only the encoder changes: pooling, Dense and Normalize always run in float32, so reduced
precision costs no more accuracy than the encoder itself loses, and float32 stays exact.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor, nn

from . import durable, hardware, onnx_int8
from .dependencies import require
from .errors import InputError

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BACKENDS = ("torch", "onnx")
QUANTIZATIONS = (None, "int8")


@dataclass(frozen=True)
class RuntimeOptions:
    """The encoder's execution settings."""

    dtype: torch.dtype = torch.float32
    quantize: str | None = None  # None or "int8": dynamic int8 weights and activations
    backend: str = "torch"  # "torch" or "onnx" (ONNX Runtime)
    compile: bool = False  # torch.compile the encoder (torch backend)
    reason: str | None = None  # why dtype="auto" chose these settings
    fallback: RuntimeOptions | None = None  # dtype="auto"'s choice where this checkpoint's int8 misses the bar

    @classmethod
    def parse(
        cls,
        dtype: str | torch.dtype | None,
        quantize: str | None,
        backend: str,
        compile: bool,
        device: torch.device | None = None,
    ) -> RuntimeOptions:
        device = device or torch.device("cpu")
        reason = None
        if dtype == "auto":
            if quantize or backend != "torch":
                raise InputError(
                    "dtype='auto' chooses the backend too; leave backend and quantize unset", param="dtype"
                )
            onnx = _has_onnxruntime() and not compile  # compile=True asks for torch
            choice = hardware.choose(hardware.detect(device.type, device.index), device.type, onnx)
            logger.info("dtype='auto' chose %s: %s", choice.quantize or choice.dtype, choice.reason)
            return cls._chosen(choice, compile)
        if dtype is None:
            dtype = torch.float32
        elif isinstance(dtype, str):
            if dtype not in DTYPES:
                raise InputError(f"dtype must be one of {', '.join(DTYPES)} or 'auto', got {dtype!r}", param="dtype")
            dtype = DTYPES[dtype]
        elif dtype not in DTYPES.values():
            raise InputError(f"dtype must be one of {', '.join(DTYPES)} or 'auto', got {dtype!r}", param="dtype")
        if quantize not in QUANTIZATIONS:
            raise InputError(f"quantize must be None or 'int8', got {quantize!r}", param="quantize")
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}", param="backend")
        if quantize and dtype != torch.float32:
            raise InputError("quantize='int8' runs int8 matrix products on float32 activations; leave dtype unset")
        if backend == "onnx" and dtype != torch.float32:
            raise InputError("backend='onnx' runs float32 or, with quantize='int8', int8; leave dtype unset")
        if compile and backend != "torch":
            raise InputError("compile=True applies to backend='torch' only")
        slow = device.type == "cpu" and _without_native_path(hardware.detect(), dtype, quantize, backend)
        if slow:
            warnings.warn(slow, UserWarning, stacklevel=3)
        return cls(dtype, quantize, backend, bool(compile), reason)

    @classmethod
    def _chosen(cls, choice: hardware.Choice, compile: bool) -> RuntimeOptions:
        fallback = cls._chosen(choice.fallback, compile) if choice.fallback else None
        return cls(DTYPES[choice.dtype], choice.quantize, choice.backend, compile, choice.reason, fallback)

    def identity(self) -> dict[str, str | None]:
        """The settings that decide the vectors, as data: a job resumes where they are equal, whichever machine
        (or ``dtype="auto"``'s reasoning) chose them. ``compile`` is left out: it changes no vector."""
        return {"dtype": str(self.dtype).removeprefix("torch."), "backend": self.backend, "quantize": self.quantize}

    def describe(self) -> str:
        name = "int8" if self.quantize else str(self.dtype).removeprefix("torch.")
        text = f"{name}, backend={self.backend}" + (", compiled" if self.compile else "")
        return text + (f", auto: {self.reason}" if self.reason else "")


def _without_native_path(machine: hardware.Hardware, dtype: torch.dtype, quantize: str | None, backend: str) -> str:
    """What to say when the CPU has no native path for the mode asked for (measured on an AVX2-only CPU), else ''."""
    if dtype == torch.bfloat16 and not machine.native_bf16:
        return (
            f"dtype='bfloat16' on a {machine.describe()}: without AVX512-BF16 or AMX, bf16 matrix products have no "
            "native path (measured at 0.16-0.26x the original package's speed on an AVX2-only CPU). Use dtype='auto' "
            "(ONNX Runtime int8 or float32 here, checked against float32) or leave dtype unset."
        )
    if quantize == "int8" and backend == "torch" and not machine.native_int8:
        return (
            f"quantize='int8' with backend='torch' on a {machine.describe()}: without int8 dot products (VNNI or "
            "AMX), torchao's int8 matrix products measured 0.03-0.07x the original package's speed on an AVX2-only "
            "CPU. Use dtype='auto' or backend='onnx' with quantize='int8' (7-bit weights there: 1.7-3.1x the original)."
        )
    return ""


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def prepare_encoder(
    auto_model: nn.Module, options: RuntimeOptions, source: Path, cache_dir: Path | None, tokenizer=None
) -> tuple[nn.Module, RuntimeOptions]:
    """The encoder to run and the options it runs with: ``auto_model`` cast, quantized, compiled or exported as
    ``options`` say, or as ``options.fallback`` says where ``dtype="auto"``'s int8 misses the fidelity bar."""
    if options.backend == "onnx":
        encoder = OnnxEncoder.from_torch(auto_model, source, options, cache_dir, tokenizer)
        if options.fallback is not None and encoder.int8 is not None and not encoder.int8.faithful_for_auto:
            fallback = replace(
                options.fallback, reason=f"{options.fallback.reason}; int8 missed the bar ({encoder.int8.describe()})"
            )
            logger.info("dtype='auto': %s", fallback.reason)
            # the fallback is float32 or bfloat16 on a CPU: no module that transformers keeps in float32 for float16
            return prepare_encoder(auto_model.to(fallback.dtype), fallback, source, cache_dir, tokenizer)
        return encoder, options
    if options.quantize == "int8":
        _torchao_int8(auto_model)
    if options.compile:
        auto_model = CompiledEncoder(auto_model)
    return auto_model, options


def _torchao_int8(auto_model: nn.Module) -> None:
    quantization = require(
        "torchao", "torchao.quantization", "quantize='int8' with backend='torch' (backend='onnx' is faster on CPU)"
    )
    quantization.quantize_(auto_model, quantization.Int8DynamicActivationInt8WeightConfig())


class CompiledEncoder(nn.Module):
    """``torch.compile`` of an encoder, with dynamic shapes; weights stay those of ``auto_model``."""

    def __init__(self, auto_model: nn.Module):
        super().__init__()
        self.auto_model = auto_model
        self.config = auto_model.config
        self._compiled = torch.compile(auto_model, dynamic=True)

    def forward(self, input_ids: Tensor, attention_mask: Tensor):
        return self._compiled(input_ids=input_ids, attention_mask=attention_mask)


class OnnxEncoder(nn.Module):
    """The encoder exported to ONNX and run by ONNX Runtime (optionally int8-quantized); CPU or CUDA.

    It runs where the module is: ``.to("cuda:1")`` moves an empty anchor buffer, and the next call opens a
    session with the CUDA provider on that GPU (CPU: the CPU provider only, whatever else is installed), so
    ``module_device`` reports the device that really runs it."""

    def __init__(self, path: Path, config, int8: onnx_int8.Int8Report | None = None, threads: int | None = None):
        super().__init__()
        self.int8 = int8
        self.path = path
        self.config = config
        self.threads = threads
        self.register_buffer("anchor", torch.empty(0), persistent=False)
        self._session, self._session_device = None, None

    @property
    def session(self):
        """The ONNX Runtime session for the device the module is on (opened on first use there)."""
        device = self.anchor.device
        if self._session is None or self._session_device != device:
            self._session, self._session_device = _onnx_session(self.path, device, self.threads), device
        return self._session

    @classmethod
    def from_torch(
        cls, auto_model: nn.Module, source: Path, options: RuntimeOptions, cache_dir: Path | None, tokenizer=None
    ) -> OnnxEncoder:
        """Export ``auto_model`` once per checkpoint (cached), and quantize it when ``options`` ask for int8."""
        _onnxruntime()
        folder = (cache_dir or default_cache_dir()) / "onnx" / _export_key(auto_model, source)
        float_path = folder / "encoder.onnx"
        if not float_path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            durable.write_file(float_path, lambda partial: _export(auto_model, partial), fault="onnx")
        if options.quantize != "int8":
            return cls(float_path, auto_model.config)
        int8_path, report = _checked_int8(auto_model, float_path, tokenizer)
        if not report.faithful and options.fallback is None:
            warnings.warn(
                f"int8 may not be faithful for {source}: even with {len(report.kept_float)} matrix products in "
                f"float32, cosine to float32 on the check texts reached only min {report.min_cosine:.4f} / mean "
                f"{report.mean_cosine:.4f} (guard: {onnx_int8.MIN_COSINE} / {onnx_int8.MEAN_COSINE}); prefer "
                "backend='onnx' without quantize, or dtype='auto'",
                UserWarning,
                stacklevel=5,
            )
        return cls(int8_path, auto_model.config, report)

    def forward(self, input_ids: Tensor, attention_mask: Tensor):
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        (hidden,) = self.session.run(["token_embeddings"], feeds)
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden).to(input_ids.device))

    def extra_repr(self) -> str:
        return str(self.path) + (f", {self.int8.describe()}" if self.int8 else "")


def _onnx_session(path: Path, device: torch.device, threads: int | None):
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InputError(
                f"backend='onnx' on {device} needs ONNX Runtime's CUDA provider (pip install onnxruntime-gpu); "
                f"this one has {', '.join(ort.get_available_providers())}",
                param="device",
            )
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0})]
    elif device.type == "cpu":
        providers = ["CPUExecutionProvider"]
    else:
        raise InputError(f"backend='onnx' runs on CPU or CUDA, not {device}", param="device")
    return ort.InferenceSession(str(path), options, providers=providers)


class _EncoderGraph(nn.Module):
    """What gets exported: ids and mask in, token embeddings out."""

    def __init__(self, auto_model: nn.Module):
        super().__init__()
        self.auto_model = auto_model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.auto_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _checked_int8(auto_model: nn.Module, float_path: Path, tokenizer) -> tuple[Path, onnx_int8.Int8Report]:
    """The checked int8 file beside ``float_path`` (made once per recipe and CPU kind) and its report."""
    reduce_range = not hardware.detect().native_int8
    int8_path = float_path.with_name(f"encoder-{onnx_int8.RECIPE}{'-reduce-range' if reduce_range else ''}.onnx")
    report_path = onnx_int8.report_path(int8_path)
    if int8_path.exists() and report_path.exists():
        return int8_path, onnx_int8.Int8Report.read(report_path)
    if tokenizer is None:
        raise InputError("quantize='int8' with backend='onnx' needs the checkpoint's tokenizer for its fidelity check")
    feeds = [
        {
            name: array.astype(np.int64)
            for name, array in tokenizer(
                list(onnx_int8.CHECK_TEXTS[start : start + 8]), padding=True, truncation=True, return_tensors="np"
            ).items()
            if name in ("input_ids", "attention_mask")
        }
        for start in range(0, len(onnx_int8.CHECK_TEXTS), 8)
    ]
    keep_float = onnx_int8.FRAGILE_MODULES.get(auto_model.config.model_type, ())
    report = onnx_int8.quantize_checked(float_path, int8_path, feeds, keep_float, reduce_range)
    return int8_path, report


def _export(auto_model: nn.Module, path: Path) -> None:
    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(
            _EncoderGraph(auto_model).eval(),
            (sample, sample),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["token_embeddings"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_embeddings": axes},
            opset_version=17,
            dynamo=False,
        )


def _export_key(auto_model: nn.Module, source: Path) -> str:
    """Changes when the checkpoint's files, the model class or the exporting torch version change."""
    digest = hashlib.sha256(f"{type(auto_model).__name__}|{torch.__version__}|{source.resolve()}".encode())
    for item in sorted(source.iterdir()):
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def default_cache_dir() -> Path:
    return Path(os.environ.get("INSTRUCTOR_EMBED_CACHE", Path.home() / ".cache" / "instructor_embed"))


def _onnxruntime():
    return require("onnx", "onnxruntime", "backend='onnx'")


FLOAT32 = RuntimeOptions()  # plain float32 torch: the default, exact
