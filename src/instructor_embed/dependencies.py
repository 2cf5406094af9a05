"""Optional packages, imported on first use, with one error that says which extra installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError


def require(extra: str, module: str, purpose: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependencyError` naming the extra ``instructor-embed[extra]``.

    >>> require("onnx", "onnxruntime", "backend='onnx'")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f"{purpose} needs" if purpose else "this needs"
        raise MissingDependencyError(
            f"{what} the '{module.split('.')[0]}' package, which is not installed: "
            f"pip install 'instructor-embed[{extra}]'",
            module=module,
            extra=extra,
        ) from exc
