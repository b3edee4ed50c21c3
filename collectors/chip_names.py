"""Vendor-neutral helpers shared by several backends: catalog chip ids from the names that NVML,
AMD SMI and the exporters report, what NVML's power reading means, and the number parsing for
vendor readings. No backend imports another; each imports these from here.
"""
from __future__ import annotations

import re
from typing import Any

_ARCH_AMPERE = 7


def chip_id_from_name(name: str) -> str:
    """Catalog chip id for an NVML device name.

    >>> chip_id_from_name("NVIDIA H100 80GB HBM3")
    'nvidia-h100-sxm'
    >>> chip_id_from_name("NVIDIA H200")
    'nvidia-h200'
    >>> chip_id_from_name("NVIDIA A100-SXM4-80GB")
    'nvidia-a100-sxm4-80gb'
    """
    upper = name.upper()
    if re.search(r"\bH200\b", upper):
        return "nvidia-h200"
    if re.search(r"\bH100\b", upper):
        if "PCIE" in upper:
            return "nvidia-h100-pcie"
        if "NVL" in upper:
            return "nvidia-h100-nvl"
        return "nvidia-h100-sxm"  # "H100 80GB HBM3" and "H100 SXM5 ..." are the SXM part
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"^\s*nvidia\s*", "", name, flags=re.I).lower()).strip("-")
    return f"nvidia-{slug or 'unknown'}"


def usage_power_kind(name: str, arch: int | None) -> str:
    """What ``nvmlDeviceGetPowerUsage`` means on this device: ``avg_1s``, ``instant`` or ``unknown``."""
    upper = name.upper()
    ga100 = bool(re.search(r"\bA(100|30)\b", upper))
    if arch is not None and 0 < arch < 0xFFFF:
        if arch > _ARCH_AMPERE or (arch == _ARCH_AMPERE and not ga100):
            return "avg_1s"
        return "instant"
    if re.search(r"\b(GH200|H100|H200|B100|B200|GB200)\b", upper):
        return "avg_1s"
    return "unknown"


def chip_id_from_market_name(name: str) -> str:
    """Catalog chip id for an AMD market name.

    >>> chip_id_from_market_name("AMD Instinct MI300X")
    'amd-mi300x'
    >>> chip_id_from_market_name("Instinct MI325X OAM")
    'amd-mi325x'
    """
    match = re.search(r"\bMI\s?(\d{3}[A-Z]*)", name.upper())
    if match:
        return f"amd-mi{match.group(1).lower()}"
    stripped = re.sub(r"^\s*(amd\s*)?(instinct\s*)?", "", name, flags=re.I)
    slug = re.sub(r"[^a-z0-9]+", "-", stripped.lower()).strip("-")
    return f"amd-{slug or 'unknown'}"


def number(value: Any) -> float | None:
    """A reading as float, or None for ``"N/A"``, None, all-ones sentinels and junk."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dict):  # some releases wrap readings as {"value": v, "unit": u}
        return number(value.get("value"))
    if isinstance(value, str):
        try:
            value = float(value.strip().split()[0])
        except (ValueError, IndexError):
            return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    if result in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF) or result != result:
        return None
    return result
