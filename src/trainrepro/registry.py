"""Name -> constructor registries (plain dicts) with errors that list the allowed names."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A parameter is unknown, has the wrong type or an out-of-range value."""


class Registry(dict):
    """A dict of constructors; `register` is a decorator, `build` a checked lookup."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self:
                raise KeyError(f"{self.kind} {name!r} registered twice")
            self[name] = obj
            return obj

        return deco

    def get_checked(self, name: str, key: str | None = None) -> Any:
        if name not in self:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}; allowed: {', '.join(sorted(self))}"
            )
        return self[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get_checked(name)(*args, **kwargs)
