"""Input vs output token cost (issue 14, part 3): each request's cost, usage cost and energy are
split between its prefill phase (input tokens) and decode phase (output tokens), as the
attribution split its active energy (attribution.request_energy); the per-token figures add up to
the blended ones, the split total is still the fleet bill, margins and break-even prices follow."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def con(money_con):
    return money_con  # tests/conftest.py: the shared money warehouse


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


def test_phase_split_is_the_attributions_own(con):
    """Each request's input share is its prefill part of the active energy as the attribution
    stored it (attribution.request_energy, summed over the UTC days it ran on); prefill + decode =
    active; the costed columns follow that share."""
    rows = con.execute("""
        with a as (select request_id, sum(active_energy_j) as a, sum(prefill_energy_j) as p,
                          sum(decode_energy_j) as d from attribution.request_energy group by all)
        select a.a, a.p, a.d, f.active_energy_j, f.prefill_energy_j, f.decode_energy_j, f.input_share,
               f.input_cost_usd, f.cost_usd, f.prompt_tokens, f.total_tokens
        from marts.fct_request_energy as f join a using (request_id)""").fetchall()
    assert len(rows) > 1000
    a, p, d, fa, fp, fd, share, ic, cost, pt, tt = (np.array([r[i] for r in rows], float) for i in range(11))
    assert np.all(p >= 0) and np.all(d >= 0)
    np.testing.assert_allclose(p + d, a, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fa, a, rtol=1e-12)
    np.testing.assert_allclose(fp, p, rtol=1e-12)
    np.testing.assert_allclose(fd, d, rtol=1e-12)
    on = a > 0
    np.testing.assert_allclose(share[on], p[on] / a[on], rtol=1e-12)
    np.testing.assert_allclose(ic, cost * share, rtol=1e-12, atol=1e-15)
    # the share is not the token share: decode costs far more energy per token than prefill
    assert np.mean(share[on]) < 0.5 * np.mean(pt[on] / tt[on])


def test_phase_device_seconds_fill_the_busy_time(con):
    """On a one-device replica, the requests' prefill + decode device-seconds of a day add up to
    the time some request was on the device (the union of their spans, computed here from the raw
    request timestamps): each busy second is shared out once."""
    rid, day = con.execute("""select replica_id, date from marts.fct_request_energy where chip = 'nvidia-h100-sxm'
                              group by all order by count(*) desc limit 1""").fetchone()
    rows = con.execute("""
        select epoch_us(coalesce(r.scheduled_ts, r.arrival_ts)), epoch_us(r.finish_ts), e.prefill_device_s,
               e.decode_device_s
        from raw.requests as r join attribution.request_energy as e using (request_id)
        where r.replica_id = ? and e.date = ? order by 1""", [rid, day]).fetchall()
    s, e = (np.array([r[i] for r in rows], np.int64) for i in (0, 1))
    s, e = (s - s.min()) / 1e6, (e - s.min()) / 1e6
    busy = _union_s(s[e > s], e[e > s])
    shared = sum(r[2] + r[3] for r in rows)
    assert len(rows) > 100
    assert shared == pytest.approx(busy, rel=0.01), (shared, busy)
