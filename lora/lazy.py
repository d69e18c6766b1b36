"""Lazy package exports (PEP 562), one helper for lora and the method packages.

Importing `merging.config` runs `merging/__init__.py` first; the hub reads the methods' torch-free config modules
at submit, so a package's `__init__` must not import torch. It names what it exports instead and each name is
imported on first use.
"""
from __future__ import annotations

from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]):
    """`__getattr__` for `package` that imports each name of `exports` (name -> module) on first access."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(exports[name]), name)
        setattr(import_module(package), name, value)
        return value

    return __getattr__
