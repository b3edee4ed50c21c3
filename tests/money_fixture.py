"""A small real warehouse for the money tests, built once per test session.

The fleet has what reconciliation has to handle: a spare H100 (a device in no replica) and an
ASIC replica that gets no traffic (replica-days without requests). 30 days at low traffic, 60 s
sampling; the simulator writes the spool and the Dagster assets (everything but the dashboard
site) load, attribute, run dbt and forecast. The money test modules take it from the session
fixtures ``money_warehouse`` / ``money_con`` (tests/conftest.py), which call :func:`money_home`:
one build per session, however many modules (or copies of this module) ask.
"""
from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

FLEET = """
name: money-test
nodes:
  - {name: h100-0, chip: nvidia-h100-sxm, devices: 2, site: us-east}
  - {name: mi300x-0, chip: amd-mi300x, devices: 2, site: us-east}
  - {name: asic-0, chip: custom-asic, devices: 2, site: us-central}
replicas:
  - {node: h100-0, model: llama-8b, devices: [0], share: 1.0}
  - {node: mi300x-0, model: llama-70b, devices: [0, 1], share: 1.0}
  - {node: asic-0, model: llama-8b, devices: [0], share: 1.0}
  - {node: asic-0, model: llama-8b, devices: [1], share: 0.0}
traffic:
  mode: synthetic
  requests_per_s: {llama-8b: 0.08, llama-70b: 0.03}
  diurnal_amplitude: 0.35
  peak_hour_utc: 15
  weekend_factor: 0.8
  growth_per_week: 0.02
  tasks: {chat: 0.4, translate: 0.1, summarize: 0.1, code-generate: 0.2, code-optimize: 0.1, code-fix: 0.1}
  languages: {en: 0.6, fr: 0.2, de: 0.2}
  tiers: {free: 0.45, subscription: 0.4, api: 0.15}
  error_rate: 0.002
faults: {}
"""
DAYS = 30
START = "2026-10-01"


def materialize_all(home: Path, exclude=("site",)):
    """Materialise every asset but ``exclude`` against ``home`` the way `tokenwatt run` does (the
    day-partitioned assets once over every day with data); returns the Dagster result."""
    old = {k: os.environ.get(k) for k in ("TOKENWATT_HOME", "TOKENWATT_DB")}
    try:
        from pipelines.cli import run_pipeline
        from pipelines.definitions import build_definitions

        keys = [k for k in build_definitions(str(home)).resolve_asset_graph().get_all_asset_keys()
                if k.to_user_string() not in exclude]
        return run_pipeline(home, selection=keys, raise_on_error=False)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_CACHE_ENV = "TOKENWATT_MONEY_TEST_HOME"  # shared by every import of this module (pytest may import it twice)


@functools.lru_cache(maxsize=1)
def money_home() -> tuple[Path, dict]:
    """(home, facts): the built warehouse and what the run reported (success, failures, checks)."""
    cached = os.environ.get(_CACHE_ENV)
    if cached and (Path(cached) / "facts.json").exists():
        facts = json.loads((Path(cached) / "facts.json").read_text())
        facts["checks"] = {tuple(k.split("|", 1)): v for k, v in facts["checks"].items()}
        return Path(cached) / "home", facts

    from collectors.sim.simulate import simulate

    base = Path(tempfile.mkdtemp(prefix="tokenwatt-money-"))
    atexit.register(shutil.rmtree, base, True)
    fleet = base / "money-test.yaml"
    fleet.write_text(FLEET)
    home = base / "home"
    simulate(fleet, home, START, DAYS, 60.0, 11, False)
    result = materialize_all(home)
    checks = [e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failures = [str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    facts = {"success": result.success, "failures": failures,
             "checks": {(c.asset_key.to_user_string(), c.check_name): c.passed for c in checks}}
    (base / "facts.json").write_text(json.dumps({**facts, "checks": {"|".join(k): v for k, v in facts["checks"].items()}}))
    os.environ[_CACHE_ENV] = str(base)
    return home, facts
