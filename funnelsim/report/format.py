"""How numbers and metric names read in the console table and in ``report.html``."""

from __future__ import annotations

import math

__all__ = [
    "ECONOMIC_METRICS",
    "PERCENT_METRICS",
    "compact",
    "whole",
    "is_percent",
    "metric_name",
    "money_unit",
]

#: Summary metrics that only mean something when the scenario has economics.
ECONOMIC_METRICS = frozenset(
    {
        "revenue",
        "spend",
        "profit",
        "cac",
        "roi",
        "uplift_revenue",
        "uplift_profit",
        "incremental_roi",
        "prob_best_profit",
    }
)

#: Metrics that are shares or ratios, shown as percentages.
PERCENT_METRICS = frozenset(
    {
        "conversion_rate",
        "roi",
        "incremental_roi",
        "prob_beats_baseline",
        "prob_best_profit",
        "share_of_conversions",
        "utilisation",
    }
)

_NAMES = {
    "conversions": "conversions",
    "arrivals": "new arrivals",
    "conversion_rate": "conversion rate (conversions per person in the funnel; repeats count)",
    "lost": "lost (left the funnel)",
    "churned": "churned (customers who left after converting)",
    "revenue": "revenue",
    "spend": "spend (media and campaign costs)",
    "profit": "profit (revenue − spend)",
    "cac": "cost per conversion",
    "roi": "return on spend (profit ÷ spend)",
    "uplift_conversions": "extra conversions vs the baseline",
    "uplift_revenue": "extra revenue vs the baseline",
    "uplift_profit": "extra profit vs the baseline",
    "incremental_roi": "return on the extra spend (Δprofit ÷ Δspend)",
    "prob_beats_baseline": "chance of more conversions than the baseline",
    "prob_best_profit": "chance of being the most profitable plan",
    "share_of_conversions": "share of conversions",
    "served": "people served",
    "lost_waiting": "lost while waiting",
    "wait_mean": "mean wait (days)",
    "wait_p50": "median wait (days)",
    "wait_p90": "90% waited at most (days)",
    "utilisation": "servers busy",
}

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
_MONEY = frozenset({"revenue", "spend", "profit", "cac", "uplift_revenue", "uplift_profit"})


def metric_name(metric: str, churned: bool = False, short: bool = False) -> str:
    """A planner's name for a summary metric (``conversion_rate`` → "conversion rate (of
    everyone in the funnel)"; ``short`` leaves out the explanation in brackets).

    With ``churned`` (the summary also reports customers leaving after converting),
    ``lost`` counts only people who left before converting and is named so.
    """
    if metric == "lost" and churned:
        return "lost before converting"
    name = _NAMES.get(metric, metric.replace("_", " "))
    return name.split(" (")[0] if short else name


def is_percent(metric: str) -> bool:
    """Whether ``metric`` is a share or ratio, to be shown as a percentage."""
    return metric in PERCENT_METRICS


def money_unit(metric: str, currency: str) -> tuple[str, str]:
    """``(prefix, suffix)`` for a money metric in ``currency``: ``("$", "")`` for USD,
    ``("", " CHF")`` for a code without a symbol, ``("", "")`` for other metrics."""
    if metric not in _MONEY or not currency:
        return "", ""
    symbol = _SYMBOLS.get(currency.upper())
    return (symbol, "") if symbol else ("", f" {currency}")


def whole(value: float, signed: bool = False) -> str:
    """A number with thousands separators, rounded to a whole: 1,245,300; with a sign
    when ``signed`` (none on zero); NaN reads as "–"."""
    if isinstance(value, float) and math.isnan(value):
        return "–"
    text = f"{abs(value):,.0f}"
    if text == "0":
        return text
    return ("+" if value >= 0 else "−") + text if signed else ("−" if value < 0 else "") + text


def compact(value: float, signed: bool = False) -> str:
    """A number a planner reads at a glance: 989 / 1,245 / 237k / 1.25M / 3.4B, with a
    sign when ``signed`` (a difference). Thousands and up keep three significant digits
    (two or three for 10k–99k as whole thousands); NaN reads as "–".

    >>> compact(1245), compact(237_400), compact(-45_600, signed=True), compact(999_600)
    ('1,245', '237k', '−46k', '1.00M')
    """
    if isinstance(value, float) and math.isnan(value):
        return "–"
    sign = ("+" if value >= 0 else "−") if signed else ("−" if value < 0 else "")
    v = abs(value)
    if round(v) < 10_000:
        return (sign if round(v) else "") + f"{v:,.0f}"  # no sign on a zero
    if round(v / 1e3) < 1000:
        return sign + f"{v / 1e3:.0f}k"
    for scale, unit in ((1e6, "M"), (1e9, "B")):
        x = v / scale
        for limit, digits in ((9.995, 2), (99.95, 1), (999.5, 0)):
            if x < limit:
                return sign + f"{x:.{digits}f}{unit}"
    return sign + f"{v / 1e12:,.0f}T"
