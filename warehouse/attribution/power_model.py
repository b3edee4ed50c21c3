"""A power model learned per device and UTC day from the device's own intervals.

Active energy of an interval (measured minus the idle baseline) is fitted against the device-seconds
the interval spent prefilling and decoding at each batch-size bin (:mod:`.segments`):

    active_j ~ alpha * prefill_s + sum_k beta_k * decode_s[k]

by non-negative least squares with ``beta`` non-decreasing across bins (decode power does not
fall as the batch grows): ``beta_k = sum_{j <= k} delta_j`` with every ``delta_j >= 0``, so the fit
is an ordinary NNLS on cumulative columns. A bin holding too little of the device's busy time is
tied to the bin below; prefill filling too little of it to be fitted is tied to the batch-1
decode power times the flat weights' ratio (``prefill_power_weight / decode_power_weight``). The bins are generic, not any chip's functional form. When the fit cannot
be trusted (too few intervals, too little decode time, rank-deficient, poor fit) the split falls
back to the per-step share (flat phase weights, decode split ``1/b``) and the reason is recorded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from warehouse.attribution.config import PowerModelConfig
from warehouse.attribution.segments import N_BINS, N_FEATURES


@dataclass
class PowerFit:
    coef_w: np.ndarray  # N_FEATURES: prefill, decode bins (active W per device-second)
    r2: float | None
    intervals: int
    max_batch: int
    fallback_reason: str | None  # None: the learned model is used

    @property
    def learned(self) -> bool:
        return self.fallback_reason is None

    def prefill_decode_ratio(self, features: np.ndarray) -> float | None:
        """Prefill power over the decode power averaged over the decode time the fit saw."""
        dec_s = features[:, 1:].sum(axis=0)
        if dec_s.sum() <= 0:
            return None
        mean_dec = float((self.coef_w[1:] * dec_s).sum() / dec_s.sum())
        return float(self.coef_w[0] / mean_dec) if mean_dec > 0 else None


def step_share_coef(weights: tuple[float, float]) -> np.ndarray:
    """The fallback: flat prefill and decode weights (decode then shared 1/b per step)."""
    return np.concatenate([[weights[0]], np.full(N_BINS, weights[1])])


def _fallback(weights, n: int, max_batch: int, reason: str, r2: float | None = None) -> PowerFit:
    return PowerFit(step_share_coef(weights), r2, n, max_batch, reason)


def fit_power_model(features: np.ndarray, active_j: np.ndarray, use: np.ndarray, cfg: PowerModelConfig,
                    weights: tuple[float, float], max_batch: int = 0) -> PowerFit:
    """Fit one device-day. ``features``: (intervals x N_FEATURES) seconds; ``use``: intervals to fit."""
    X, y = features[use], active_j[use]
    n = int(y.shape[0])
    if not cfg.enabled:
        return _fallback(weights, n, max_batch, "disabled")
    if n < cfg.min_intervals:
        return _fallback(weights, n, max_batch, f"too few busy intervals ({n} < {cfg.min_intervals})")
    busy_s = X.sum(axis=0)
    total = float(busy_s.sum())
    if busy_s[1:].sum() < cfg.min_busy_fraction * total:
        return _fallback(weights, n, max_batch, "too little decode time to fit")
    # too little prefill to fit its power: tie it to batch-1 decode power x the flat weights' ratio
    tie = weights[0] / weights[1] if busy_s[0] < cfg.min_busy_fraction * total else None
    # columns: prefill, then cumulative decode columns Z_j = sum_{k >= j} D_k for the kept deltas
    kept = [0] + [j for j in range(N_BINS) if j == 0 or busy_s[1 + j] >= cfg.min_busy_fraction * total]
    rev = np.cumsum(X[:, :0:-1], axis=1)[:, ::-1]  # rev[:, j] = sum_{k >= j} D_k
    if tie is not None:
        rev[:, 0] += tie * X[:, 0]
    A = np.column_stack(([] if tie is not None else [X[:, 0]]) + [rev[:, j] for j in kept[1:]])
    if tie is not None:
        A = np.column_stack([np.zeros(n), A])  # a zero prefill column, solved below as the tie
    scale = np.maximum(np.abs(A).max(axis=0), 1e-12)
    # min |A x - y| = min |R x - Q'y| with A = QR: the NNLS runs on a (features x features) system
    cols = slice(1 if tie is not None else 0, None)
    q, r = np.linalg.qr(A[:, cols] / scale[cols])
    if np.linalg.matrix_rank(r) < r.shape[1]:
        return _fallback(weights, n, max_batch, "rank-deficient features")
    sol = np.zeros(A.shape[1])
    sol[cols] = nnls(r, q.T @ y)[0] / scale[cols]
    if tie is not None:
        sol[0] = tie * sol[1]
    pred = A[:, cols] @ sol[cols]
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else None
    if r2 is None or r2 < cfg.min_r2:
        return _fallback(weights, n, max_batch, f"poor fit (r2 {r2 if r2 is None else round(r2, 3)})", r2)
    delta = np.zeros(N_BINS)
    delta[kept[1:]] = sol[1:]
    coef = np.concatenate([[sol[0]], np.cumsum(delta)])
    if coef[0] <= 0 or coef[1] <= 0:
        return _fallback(weights, n, max_batch, "zero prefill or batch-1 decode power", r2)
    return PowerFit(coef, r2, n, max_batch, None)


__all__ = ["PowerFit", "fit_power_model", "step_share_coef", "N_FEATURES"]
