"""The model registry and small helpers shared by the model families (argument checks,
dropout, sizes)."""
from __future__ import annotations

from torch import nn

from trainrepro.registry import ConfigError, Registry

MODELS = Registry("model")  # filled by @MODELS.register in each model module


def check_rate(model: str, name: str, p: float) -> float:
    """Return `p` if it is a valid dropout rate in [0, 1), else raise ConfigError."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ConfigError(f"model {model!r}: {name} must be a float in [0, 1), got {p!r}")
    return float(p)


def check_positive(model: str, name: str, value: int) -> int:
    """Return `value` if it is a positive int, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model {model!r}: {name} must be a positive int, got {value!r}")
    return value


def check_int_list(model: str, name: str, values: list[int], length: int | None = None) -> list[int]:
    """Return `values` as a list of positive ints (of `length` if given), else raise ConfigError."""
    if not isinstance(values, (list, tuple)) or (length is not None and len(values) != length):
        want = f"a list of {length} positive ints" if length is not None else "a list of positive ints"
        raise ConfigError(f"model {model!r}: {name} must be {want}, got {values!r}")
    return [check_positive(model, name, v) for v in values]


def check_common(model: str, num_classes: int, in_channels: int, image_size: int) -> None:
    """Validate the three arguments every constructor takes."""
    check_positive(model, "num_classes", num_classes)
    check_positive(model, "in_channels", in_channels)
    check_positive(model, "image_size", image_size)


def dropout(p: float) -> nn.Module:
    """nn.Dropout(p), or nn.Identity when p == 0 so the module tree stays minimal."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial side after a conv / pool with these settings (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1
