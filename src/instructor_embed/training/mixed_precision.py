"""float16 autocast without the overflows transformers guards against: the modules a model class keeps in float32
when it loads in float16 (``_keep_in_fp32_modules``: T5's feed-forward output ``wo``, whose activations exceed
float16's range) also run in float32 under autocast, which would otherwise cast their products to float16."""

from __future__ import annotations

import types

import torch
from torch import nn


def keep_float32_modules(encoder: nn.Module, device_type: str) -> list[str]:
    """Run ``encoder``'s float32 modules with autocast off and float32 inputs; returns their names."""
    kept = set(getattr(encoder, "_keep_in_fp32_modules", None) or ())
    names = []
    for name, module in encoder.named_modules():
        if name.rsplit(".", 1)[-1] in kept:
            module._float32_device_type = device_type
            # bound to the module, so a deep copy of the model rebinds it to the copy (and runs the copy's weights)
            module.forward = types.MethodType(_forward_in_float32, module)
            names.append(name)
    return names


def _forward_in_float32(module: nn.Module, *args, **kwargs):
    with torch.autocast(module._float32_device_type, enabled=False):
        return type(module).forward(module, *(_float32(a) for a in args), **{k: _float32(v) for k, v in kwargs.items()})


def _float32(value):
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value
