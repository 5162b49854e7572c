"""Make purchases.csv, the example repeat-purchase history: 2,000 customers of a shop
over 540 days, simulated with
:func:`funnelsim.data.synthetic.simulate_repeat_journeys` (the Pareto/NBD process as a
journey). Each customer visits (visitors arrive steadily), buys about 5 days later,
then buys again at their own rate until they stop, unseen, at their own rate: repeat
rates ~ Gamma(0.6, 20) per day (an average customer buys again 0.9 times a month, a few
far more often, many rarely), drop-out rates ~ Gamma(0.8, 120) per day (half the
customers stop within about 165 days). Nothing records who stopped.

Run from this folder: ``python make_purchases.py``.
"""

from __future__ import annotations

from funnelsim.data.synthetic import simulate_repeat_journeys

log, truth = simulate_repeat_journeys(
    2000, r=0.6, alpha=20.0, s=0.8, beta=120.0, days=540.0, start="2025-01-01",
    arrive_within=1.0, seed=2026,
)  # fmt: skip
log["timestamp"] = log["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
log.to_csv("purchases.csv", index=False)
truth.round(6).to_csv("truth.csv", index=False)
