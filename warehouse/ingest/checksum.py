"""Order-independent content checksums of warehouse tables (tests and crash checks compare them)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class TableChecksum:
    """Order-independent content checksum of one table.

    ``exact`` sums the row hashes of every non-double column, so any change to a key, a count, a
    label or a timestamp shows. Doubles cannot be hashed honestly: a parallel floating-point sum may
    differ in its last bit between two runs, and rounding to any precision still flips on a value
    that sits at a rounding boundary. So each double column is summarised by sums that two
    checksums must agree on to ``rel``: its plain sum, and the sum of sign(x)·ln(1+|x|) weighted by
    a per-row factor drawn from the row's exact hash. The logarithm keeps a small value's change
    visible next to large ones; the weight catches a value moved to another row.
    """

    rows: int
    exact: int
    doubles: tuple[tuple[str, float, float], ...]
    rel: float = 1e-9

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableChecksum):
            return NotImplemented
        if (self.rows, self.exact) != (other.rows, other.exact):
            return False
        if [d[0] for d in self.doubles] != [d[0] for d in other.doubles]:
            return False
        tol = max(self.rel, other.rel)
        return all((math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=tol, abs_tol=1e-9)
                   for (_, *xs), (_, *ys) in zip(self.doubles, other.doubles) for a, b in zip(xs, ys))

    __hash__ = None  # equality is approximate, so it cannot be hashed


def table_checksums(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, TableChecksum]:
    """Order-independent content checksum per table (see :class:`TableChecksum`).

    Load timestamps and file-system fingerprints are left out.
    """
    out = {}
    for t in tables:
        exact, doubles = [], []
        for name, typ, *_ in con.execute(f"describe {t}").fetchall():
            if name in ("_loaded_at", "loaded_at", "fingerprint", "marked_at"):
                continue
            (doubles if typ in ("DOUBLE", "FLOAT", "REAL") else exact).append(name)
        row_hash = "hash(" + ", ".join(exact) + ")" if exact else "0::ubigint"
        weight = f"(({row_hash}) % 1009 + 1)::double"
        sums = [f"coalesce(sum({d}), 0), coalesce(sum(sign({d}) * ln(1 + abs({d})) * {weight}), 0)"
                for d in doubles]
        row = con.execute(f"select count(*), coalesce(sum(({row_hash})::hugeint), 0)"
                          + "".join(", " + s for s in sums) + f" from {t}").fetchone()
        out[t] = TableChecksum(
            rows=int(row[0]), exact=int(row[1]),
            doubles=tuple((d, float(row[2 + 2 * k]), float(row[3 + 2 * k])) for k, d in enumerate(doubles)))
    return out
