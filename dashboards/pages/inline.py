"""Chart data inlined compactly: per-day rows as CSV text, repeated names as a small coded key."""
from __future__ import annotations

import altair as alt
import pandas as pd


def csv_chart(df: pd.DataFrame, codes: tuple[str, ...] = ("chip", "model")) -> alt.Chart:
    """An ``alt.Chart`` over ``df`` inlined as CSV text: numbers parsed as numbers, the rest kept as
    strings, and the ``codes`` columns (names repeated on every row) replaced by one small integer key
    looked up, in the chart, from a table of their combinations. About a quarter of the bytes of
    Vega-Lite's row objects: for charts that carry per-day rows so that they follow the date range.
    The chart's CSV download is written from ``df`` itself, names and all."""
    codes = tuple(c for c in codes if c in df.columns)
    body = df
    lookup = None
    if codes:
        keys = df[list(codes)].drop_duplicates().reset_index(drop=True)
        keys["k_"] = range(len(keys))
        body = df.merge(keys, on=list(codes), how="left").drop(columns=list(codes))
        body = body[["k_"] + [c for c in df.columns if c not in codes]]
        lookup = keys
    parse = {c: "number" for c in body.columns if pd.api.types.is_numeric_dtype(body[c])}
    ch = alt.Chart(alt.InlineData(values=body.to_csv(index=False, lineterminator="\n"),
                                  format=alt.DataFormat(type="csv", parse=parse)))
    if lookup is not None:
        ch = ch.transform_lookup(lookup="k_", from_=alt.LookupData(lookup, "k_", list(codes)))
    return ch
