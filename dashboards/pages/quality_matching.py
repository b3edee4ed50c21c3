"""The matching section on quality.html: per node and day, devices that report samples but serve no
request, requests whose devices report no samples, and requests the inference server counted that
the request telemetry lacks (or the reverse), with counts, from marts.fct_data_quality_daily."""
from __future__ import annotations

from dashboards.pages._core import Ctx, Live, Note, Section, columns, no_data
from dashboards.pages.quality_quarantine import NO_CHIP, node_chip_cte

DQ = "marts.fct_data_quality_daily"
#: the mart's reasons this section shows, with the column heading each gets
REASONS = {
    "devices with samples but no requests": "Devices with samples, no requests",
    "requests whose devices report no samples": "Requests on devices without samples",
    "requests counted by the server, missing from the request telemetry": "Requests the server counted, not in telemetry",
    "requests in the request telemetry the server did not count": "Requests in telemetry the server did not count",
    "replica-hours whose tokens differ from the server counters beyond tolerance": "Replica-hours beyond token tolerance",
    "server counter scrapes that map to no replica": "Server scrapes without a replica",
}


def section(ctx: Ctx) -> Section:
    wh = ctx.wh
    sec = Section("Devices, requests and server counters that do not match",
                  "Per node and UTC day: devices that report samples but served no request, requests whose "
                  "replica's devices report no samples (one machine named two ways by the exporter and the request "
                  "telemetry shows as both: see the host-name aliases in docs/collectors.md), and requests the "
                  "inference server counted itself (vllm:request_success_total, scraped) that the request telemetry "
                  "lacks, or the reverse.")
    note = no_data(wh, DQ)
    if note:
        sec.blocks.append(note)
        return sec
    reasons = list(REASONS)
    ph = ", ".join("?" for _ in reasons)
    n = wh.one(f"select count(*) from {DQ} where reason in ({ph})", reasons)[0]
    if not n:
        sec.blocks.append(Note("Every device with samples served requests, every request's devices reported "
                               "samples, and the server counters match the request telemetry.", "info"))
        return sec
    sec.blocks.append(matching_table(ctx))
    return sec


#: the measure (and column key) each reason becomes
KEYS = dict(zip(REASONS, ("idle_devices", "requests_no_samples", "server_not_telemetry", "telemetry_not_server",
                          "replica_hours_off", "scrapes_no_replica"), strict=True))


def matching_table(ctx: Ctx) -> Live:
    """One row per node and day with anything unmatched, in the selected dates; a node's chip as the
    quarantine table finds it (its devices' one chip), a node with none or several matching every chip."""
    wh, pal = ctx.wh, ctx.pal
    reasons = list(REASONS)
    ph = ", ".join("?" for _ in reasons)
    sums = ", ".join(f"sum(case when reason = ? then rows else 0 end) as {k}" for k in KEYS.values())
    df = wh.df(f"""with {node_chip_cte(ctx)}
                   select strftime(d.date, '%Y-%m-%d') as date, d.node, nc.chip, {sums}
                   from {DQ} d left join node_chip nc on nc.node = d.node
                   where d.reason in ({ph}) group by all order by all""", [*reasons, *reasons])
    cols = [{"key": "date", "label": "Date"}, {"key": "node", "label": "Node"},
            {"key": "chip", "label": "Chip", "swatch": True, "null_text": NO_CHIP}]
    cols += [{"key": k, "label": REASONS[r], "fmt": "num0"} for r, k in KEYS.items()]
    return Live("quality-matching-table", {
        "kind": "table", "data": columns(df), "dims": ["date"], "sums": list(KEYS.values()),
        "measures": [{"name": k, "sum": k} for k in KEYS.values()], "group": ["date", "node", "chip"],
        "columns": cols, "keep_null": ["chip"], "colors": {c: pal.chip_hex(c) for c in pal.chips},
        "sort": {"col": "date", "desc": False}, "scroll": len(df) > 20, "total": "All node-days",
        "csv": "unmatched.csv",
        "caption": "Node-days with anything unmatched in the selected dates and chip (the chip of the node's "
                   "devices; a node with none or several matches every chip), from marts.fct_data_quality_daily."})
