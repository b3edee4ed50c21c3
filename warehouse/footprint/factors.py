"""Carbon and water factors per site (``footprint.yaml`` beside this file, or ``TOKENWATT_FOOTPRINT``).

Validated like prices: every number finite and within physical bounds, every block with a source,
unknown keys refused; a wrong file raises :class:`FootprintError` naming the file and the field.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collectors.config import fields, load_yaml_mapping, number, string

FOOTPRINT_FILE = Path(__file__).parent / "footprint.yaml"


class FootprintError(ValueError):
    """A carbon or water file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class SiteFactors:
    site: str
    location_g_per_kwh: float
    market_g_per_kwh: float
    hourly_profile: tuple[float, ...] | None
    onsite_l_per_kwh: float
    source_l_per_kwh: float | None
    carbon_source: str
    water_source: str

    def location_g_per_kwh_at(self, utc_hour: int) -> float:
        """Location-based intensity in a UTC hour (the annual factor when there is no profile)."""
        return self.location_g_per_kwh * (self.hourly_profile[utc_hour] if self.hourly_profile else 1.0)


def _profile(src, where: str, raw) -> tuple[float, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != 24:
        raise FootprintError(f"{src}: field '{where}' must be a list of 24 hourly multipliers")
    vals = tuple(number(src, f"{where}[{i}]", v, lo=0, hi=10, error=FootprintError) for i, v in enumerate(raw))
    mean = sum(vals) / 24
    if abs(mean - 1.0) > 1e-3:
        raise FootprintError(f"{src}: field '{where}' must average 1 (got {mean:.4f})")
    return vals


def _site(src, name: str, raw) -> SiteFactors:
    w = f"sites.{name}"
    fields(src, w, raw, {"carbon", "water"}, required=("carbon", "water"), error=FootprintError)
    c = fields(src, f"{w}.carbon", raw["carbon"], {"location_g_per_kwh", "market_g_per_kwh", "hourly_profile", "source"},
               required=("location_g_per_kwh", "market_g_per_kwh", "source"), error=FootprintError)
    wa = fields(src, f"{w}.water", raw["water"], {"onsite_l_per_kwh", "source_l_per_kwh", "source"},
                required=("onsite_l_per_kwh", "source"), error=FootprintError)
    return SiteFactors(
        site=name,
        location_g_per_kwh=number(src, f"{w}.carbon.location_g_per_kwh", c["location_g_per_kwh"], lo=0, hi=2000,
                                  error=FootprintError),
        market_g_per_kwh=number(src, f"{w}.carbon.market_g_per_kwh", c["market_g_per_kwh"], lo=0, hi=2000,
                                error=FootprintError),
        hourly_profile=_profile(src, f"{w}.carbon.hourly_profile", c.get("hourly_profile")),
        onsite_l_per_kwh=number(src, f"{w}.water.onsite_l_per_kwh", wa["onsite_l_per_kwh"], lo=0, hi=20,
                                error=FootprintError),
        source_l_per_kwh=number(src, f"{w}.water.source_l_per_kwh", wa.get("source_l_per_kwh"), lo=0, hi=100,
                                allow_none=True, error=FootprintError),
        carbon_source=string(src, f"{w}.carbon.source", c["source"], error=FootprintError),
        water_source=string(src, f"{w}.water.source", wa["source"], error=FootprintError),
    )


def load_footprint(path: str | Path | None = None) -> dict[str, SiteFactors]:
    """Site -> factors; the ``default`` site is required (it covers sites the file does not name)."""
    path = Path(path or FOOTPRINT_FILE)
    raw = load_yaml_mapping(path, FootprintError)
    fields(path, "", raw, {"sites"}, required=("sites",), error=FootprintError)
    sites = fields(path, "sites", raw["sites"], raw["sites"].keys() if isinstance(raw["sites"], dict) else (),
                   error=FootprintError)
    out = {str(k): _site(path, str(k), v) for k, v in sites.items()}
    if "default" not in out:
        raise FootprintError(f"{path}: missing field 'sites.default'")
    return out
