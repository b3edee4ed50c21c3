"""The footprint lines of ``tokenwatt demo``: the median full-boundary Wh per request and its split."""
from __future__ import annotations

from pathlib import Path

import duckdb

BOUNDARIES = ("accelerator", "host", "reserve", "facility")
#: Google, arXiv 2508.15734 (Aug 2025): median Gemini Apps text prompt and its energy split (%)
GOOGLE_LINE = "published (Google, arXiv 2508.15734): 0.24 Wh, 0.03 gCO2e, 0.26 mL; 58 / 25 / 10 / 8 %"


def footprint_lines(db: Path | str) -> list[str]:
    """Median full-boundary Wh, gCO2e (market) and mL per request, the energy split by boundary, and the
    published figures beside them; one line saying why when the footprint mart is missing or empty."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        if not con.execute("""select count(*) from information_schema.tables
                              where table_schema = 'marts' and table_name = 'fct_request_footprint'""").fetchone()[0]:
            return ["footprint: marts.fct_request_footprint does not exist (run the pipeline)"]
        row = con.execute(f"""select count(*), median(full_wh), median(accelerator_wh), median(full_market_gco2e),
                                     median(full_water_ml), sum(full_j),
                                     {', '.join(f'sum({b}_j)' for b in BOUNDARIES)}
                              from marts.fct_request_footprint""").fetchone()
    finally:
        con.close()
    n, wh, acc_wh, g, ml, full_j, *parts = row
    if not n or not full_j:
        return ["footprint: no request has a footprint yet"]
    split = " / ".join(f"{p / full_j * 100:.0f}" for p in parts)
    return [f"median request, full boundary: {wh:.3f} Wh (accelerator only {acc_wh:.3f} Wh), "
            f"{g:.3f} gCO2e market-based, {ml:.3f} mL water",
            f"energy split accelerator / host / reserve / facility: {split} %",
            GOOGLE_LINE]
