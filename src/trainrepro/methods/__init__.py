"""Method registry: one file per method family, each a `Method` plugged into the engine.

params.yaml names method *instances* (e.g. `lgl_r4: {family: lgl, strategy: r, steps: 4}`);
the family selects the class registered here, the other keys are its hyper-parameters.
"""
from __future__ import annotations

import importlib
import pkgutil

from ..registry import Registry
from .base import Method

METHODS: Registry = Registry("method family")


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: register a Method subclass under its `family`."""
    METHODS.register(cls.family)(cls)
    return cls


def _import_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base":
            importlib.import_module(f"{__name__}.{mod.name}")


_import_all()

__all__ = ["METHODS", "Method", "register"]
