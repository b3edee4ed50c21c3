"""One validated loader for every YAML file tokenwatt reads (fleet, chips, prices, scenarios,
attribution config).

A file is a mapping; each loader checks its fields with :func:`fields`, :func:`number` and
:func:`string`, so an unknown key, a wrong type or a non-finite number is an error that names the
file and the field. Each caller passes its own ``ValueError`` subclass (``FleetError``,
``PriceError``...), so the CLI can report it as a user error.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import yaml


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the field."""


def load_yaml_mapping(path: str | Path, error: type[ValueError] = ConfigError) -> dict:
    """A YAML file whose top level is a mapping; any problem raises ``error`` naming the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: top level must be a mapping")
    return data


def _field(where: str, key: str | None = None) -> str:
    return f"{where}.{key}" if where and key else (key or where)


def fields(src: Any, where: str, d: Any, allowed: Iterable[str], required: Iterable[str] = (),
           error: type[ValueError] = ConfigError) -> dict:
    """``d`` must be a mapping holding only ``allowed`` keys and every ``required`` one."""
    if not isinstance(d, dict):
        raise error(f"{src}: field '{where or 'top level'}' must be a mapping, got {type(d).__name__}")
    allowed = set(allowed)
    unknown = sorted(str(k) for k in d if k not in allowed)
    if unknown:
        raise error(f"{src}: unknown field '{_field(where, unknown[0])}' (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in d:
            raise error(f"{src}: missing field '{_field(where, key)}'")
    return d


def number(src: Any, where: str, value: Any, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, allow_none: bool = False, integer: bool = False,
           error: type[ValueError] = ConfigError) -> float | int | None:
    """A finite number within [lo, hi] (``lo_open``: strictly above lo); NaN and Inf are refused."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{src}: field '{where}' must be a number, got {value!r}")
    if not math.isfinite(value):
        raise error(f"{src}: field '{where}' must be a finite number, got {value!r}")
    if integer and float(value) != int(value):
        raise error(f"{src}: field '{where}' must be a whole number, got {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise error(f"{src}: field '{where}' must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise error(f"{src}: field '{where}' must be <= {hi}, got {value!r}")
    return int(value) if integer else float(value)


def string(src: Any, where: str, value: Any, *, choices: Iterable[str] | None = None, allow_none: bool = False,
           error: type[ValueError] = ConfigError) -> str | None:
    """A non-empty string (one of ``choices`` when given)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise error(f"{src}: field '{where}' must be a non-empty string, got {value!r}")
    if choices is not None:
        choices = list(choices)
        if value not in choices:
            raise error(f"{src}: field '{where}' must be one of {', '.join(choices)}, got {value!r}")
    return value


def boolean(src: Any, where: str, value: Any, error: type[ValueError] = ConfigError) -> bool:
    if not isinstance(value, bool):
        raise error(f"{src}: field '{where}' must be true or false, got {value!r}")
    return value
