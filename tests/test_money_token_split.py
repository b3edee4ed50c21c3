"""Input vs output token cost (issue 14, part 3): each request's cost, usage cost and energy are
split between its prefill phase (input tokens) and decode phase (output tokens), as the
attribution prices the two phases (int_request_phases); the per-token figures add up to the
blended ones, the split total is still the fleet bill, margins and break-even prices follow."""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # "from tests.... import" under any runner
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_money_fixture import money_home  # noqa: E402
from warehouse.money.prices import phase_weights  # noqa: E402


@pytest.fixture(scope="module")
def con():
    home, facts = money_home()
    assert facts["success"], facts["failures"]
    c = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    yield c
    c.close()


def test_input_and_output_per_mtok_reconcile_with_the_blended_figure(con):
    rows = con.execute("""
        select chip, model, sum(prompt_tokens), sum(completion_tokens), sum(tokens),
               sum(input_cost_usd), sum(output_cost_usd), sum(cost_usd),
               sum(input_usage_cost_usd), sum(output_usage_cost_usd), sum(usage_cost_usd)
        from marts.fct_cost_per_token_daily group by all""").fetchall()
    assert len(rows) == 3
    for chip, model, p, c, t, ic, oc, cost, iu, ou, usage in rows:
        blended = cost / t * 1e6
        in_ppm, out_ppm = ic / p * 1e6, oc / c * 1e6
        assert abs((in_ppm * p + out_ppm * c) / t - blended) <= 1e-9 * blended, (chip, model)
        u_blended = usage / t * 1e6
        assert abs(((iu / p * 1e6) * p + (ou / c * 1e6) * c) / t - u_blended) <= 1e-9 * u_blended, (chip, model)
        # decode (sequential, memory-bound) costs more per token than prefill (one parallel pass)
        assert out_ppm > 5 * in_ppm > 0, (chip, model, in_ppm, out_ppm)
    # the daily mart's own per-Mtok columns agree with its sums
    bad = con.execute("""select count(*) from marts.fct_cost_per_token_daily where
        abs(input_usd_per_mtok * prompt_tokens + output_usd_per_mtok * completion_tokens - usd_per_mtok * tokens)
            > 1e-9 * usd_per_mtok * tokens""").fetchone()[0]
    assert bad == 0


def test_split_total_is_still_the_fleet_bill(con):
    split = con.execute("select sum(input_cost_usd) + sum(output_cost_usd) from marts.fct_token_economics").fetchone()[0]
    bill = con.execute("select sum(total_cost_usd) from marts.fct_device_energy_daily").fetchone()[0]
    assert abs(split - bill) <= 1e-4 * bill, (split, bill)


def test_every_chip_model_task_tier_has_both_prices_on_both_bases(con):
    rows = con.execute("""select chip, model, task, tier, sum(input_tokens), sum(output_tokens),
                                 sum(input_cost_usd) / sum(input_tokens) * 1e6, sum(output_cost_usd) / sum(output_tokens) * 1e6,
                                 sum(input_usage_cost_usd) / sum(input_tokens) * 1e6,
                                 sum(output_usage_cost_usd) / sum(output_tokens) * 1e6
                          from marts.fct_token_economics where chip is not null group by all""").fetchall()
    assert len(rows) == 3 * 6 * 3  # (chip, model) x tasks x tiers in the money fixture
    for r in rows:
        assert all(v is not None and np.isfinite(v) and v > 0 for v in r[4:]), r
        assert r[8] <= r[6] and r[9] <= r[7], r  # usage basis (only what it used) <= whole-bill basis


def test_margin_per_model_tier_vendor(con):
    rows = con.execute("""select model, tier, vendor, sum(revenue_usd), sum(cost_usd), sum(margin_usd),
                                 sum(input_revenue_usd) + sum(output_revenue_usd)
                          from marts.fct_token_economics group by all""").fetchall()
    assert rows
    for model, tier, vendor, rev, cost, margin, rev_split in rows:
        assert margin == pytest.approx(rev - cost, rel=1e-12, abs=1e-9)
        assert rev_split == pytest.approx(rev, rel=1e-12, abs=1e-12)
        if tier == "free":
            assert rev == 0 and margin < 0
    api = con.execute("""select model, sum(input_revenue_usd), sum(input_tokens) from marts.fct_token_economics
                         where tier = 'api' group by model""").fetchall()
    prices = dict(con.execute("select model, usd_per_mtok_input from ref.api_prices").fetchall())
    for model, rev_in, tok_in in api:
        assert rev_in == pytest.approx(tok_in * prices[model] / 1e6, rel=1e-12)


def test_break_even_price_per_model_and_chip(con):
    rows = con.execute("""select chip, model, input_tokens, output_tokens, cost_usd, break_even_usd_per_mtok_input,
                                 break_even_usd_per_mtok_output, list_usd_per_mtok_input, list_usd_per_mtok_output,
                                 break_even_list_scale from marts.fct_break_even_price""").fetchall()
    assert len(rows) == 3
    for chip, model, ti, to, cost, be_in, be_out, l_in, l_out, scale in rows:
        # pricing every token at the break-even prices recovers exactly the cost
        assert (ti * be_in + to * be_out) / 1e6 == pytest.approx(cost, rel=1e-9)
        assert scale * (ti * l_in + to * l_out) / 1e6 == pytest.approx(cost, rel=1e-9)


def _union_s(s: np.ndarray, e: np.ndarray) -> float:
    order = np.argsort(s, kind="stable")
    total, cur_s, cur_e = 0.0, None, None
    for a, b in zip(s[order], e[order]):
        if cur_e is None or a > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = a, b
        else:
            cur_e = max(cur_e, b)
    return total + (cur_e - cur_s if cur_e is not None else 0.0)


def test_phase_shares_match_an_independent_computation(con):
    """Recompute one replica-day's input shares from the raw request timestamps in numpy (busy
    time as a union of spans, mean decode concurrency, the attribution's phase weights) and
    compare with int_request_phases."""
    rid, day, chip = con.execute("""select replica_id, date, chip from marts.fct_request_energy
                                    where chip = 'amd-mi300x' group by all order by count(*) desc limit 1""").fetchone()
    rows = con.execute("""
        select r.request_id, epoch_us(coalesce(r.scheduled_ts, r.arrival_ts)), epoch_us(r.first_token_ts),
               epoch_us(r.finish_ts), r.completion_tokens, f.input_share
        from raw.requests as r join marts.fct_request_energy as f using (request_id)
        where r.replica_id = ? and f.date = ? order by 1""", [rid, day]).fetchall()
    # integer microseconds, so the phase lengths are exact (seconds since 1970 as floats are not)
    s, fst, e = (np.array([r[i] for r in rows], np.int64) for i in range(1, 4))
    comp, want = (np.array([r[i] for r in rows], float) for i in (4, 5))
    pre = np.maximum(fst - s, 0) / 1e6
    dec = np.where(comp > 1, np.maximum(e - fst, 0), 0) / 1e6
    s, e = (s - s.min()) / 1e6, (e - s.min()) / 1e6
    busy = _union_s(s[e > s], e[e > s])
    per_s = min(max(busy - pre.sum(), 0), dec.sum()) / dec.sum()
    assert 0 < per_s <= 1
    wp, wd = phase_weights(chip)
    got = wp * pre / (wp * pre + wd * dec * per_s)
    assert len(rows) > 100
    np.testing.assert_allclose(got, want, rtol=1e-9)
