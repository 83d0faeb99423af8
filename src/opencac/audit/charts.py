"""Report charts as SVG data URIs (matplotlib, imported lazily, Agg backend)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

from opencac.audit.metrics import ReliabilityBin, TrendPoint

_BLUE, _ORANGE, _GREY, _RED, _GREEN = "#1f5fa8", "#d9822b", "#8a8f98", "#b3261e", "#2e7d32"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "opencac", "figure.dpi": 100})
    return plt


def _to_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def _empty(message: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", color=_GREY)
    return _to_uri(fig)


def accuracy_trend(points: Sequence[TrendPoint]) -> str:
    """Encounter accuracy per model version with 95% intervals."""
    if not points:
        return _empty("No model versions recorded in this sample.")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 2.6))
    xs = list(range(len(points)))
    ys = [(p.encounter_accuracy.value or 0) * 100 for p in points]
    lo = [max(0.0, y - (p.encounter_accuracy.low or 0) * 100) for y, p in zip(ys, points, strict=True)]
    hi = [max(0.0, (p.encounter_accuracy.high or 0) * 100 - y) for y, p in zip(ys, points, strict=True)]
    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", color=_BLUE, capsize=4, linewidth=1.5)
    for x, y, p in zip(xs, ys, points, strict=True):
        ax.annotate(f"{y:.0f}% (n={p.n})", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xticks(xs, [p.model_version for p in points], rotation=0)
    ax.set_ylim(0, 105)
    ax.set_ylabel("Encounters fully correct (%)")
    ax.set_xlabel("Model version (oldest first)")
    return _to_uri(fig)


def error_categories(kinds: Mapping[str, int], causes: Mapping[str, int]) -> str:
    """Two bar charts: findings by kind and by root cause."""
    if not kinds and not causes:
        return _empty("No findings: every audited code was correct.")
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.6))
    for ax, data, title, colour in ((axes[0], kinds, "Findings by type", _ORANGE),
                                    (axes[1], causes, "Findings by root cause", _BLUE)):
        labels = [k.replace("_", " ") for k in data]
        ax.barh(labels, list(data.values()), color=colour)
        for i, v in enumerate(data.values()):
            ax.text(v, i, f" {v}", va="center", fontsize=8)
        ax.set_title(title, fontsize=9, loc="left")
        ax.invert_yaxis()
        ax.set_xlabel("Findings")
    fig.tight_layout()
    return _to_uri(fig)


def reliability_chart(bins: Sequence[ReliabilityBin]) -> str:
    """Stated confidence vs observed accuracy (a well-calibrated model sits on the diagonal)."""
    used = [b for b in bins if b.n]
    if not used:
        return _empty("No AI confidence recorded for the sampled encounters.")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    ax.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=1, label="perfect calibration")
    ax.plot([b.mean_confidence for b in used], [b.accuracy for b in used], marker="o", color=_BLUE,
            label="observed")
    for b in used:
        ax.annotate(f"n={b.n}", (b.mean_confidence, b.accuracy), textcoords="offset points",
                    xytext=(4, -10), fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("AI confidence")
    ax.set_ylabel("Share fully correct")
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    return _to_uri(fig)


def automation_curve(curve: Sequence[Mapping[str, Any]], target: float | None = None) -> str:
    """Projected automation by target precision: the share of straight-through encounters and
    each code system's recall (share of the coder's codes above its threshold); the current
    target is marked. ``curve`` rows as ``RoutingPolicy.projection["curve"]``."""
    rows = sorted((r for r in curve if r.get("target_precision") is not None), key=lambda r: r["target_precision"])
    if not rows:
        return _empty("No projection stored: fit the policy on validation data.")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.8, 3.0))
    xs = [float(r["target_precision"]) for r in rows]
    ax.plot(xs, [float(r.get("straight_through_rate") or 0.0) for r in rows], color=_BLUE, marker="o",
            markersize=3, linewidth=2, label="straight-through encounters")
    palette = (_ORANGE, _GREEN, _RED, _GREY)
    for i, key in enumerate(sorted({k for r in rows for k in (r.get("recall") or {})})):
        ax.plot(xs, [float((r.get("recall") or {}).get(key) or 0.0) for r in rows], color=palette[i % len(palette)],
                linestyle="--", linewidth=1.5, label=f"recall {key}")
    if target is not None:
        ax.axvline(float(target), color=_GREY, linewidth=1, linestyle=":")
        ax.annotate(f"target {float(target):.2f}", (float(target), 1.0), textcoords="offset points", xytext=(4, -10),
                    fontsize=7, color=_GREY)
    ax.set_xlim(min(xs), max(xs))
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("target precision")
    ax.set_ylabel("share")
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    return _to_uri(fig)


def drg_impact(changes: Sequence[tuple[str, float]], base_rate: float) -> str:
    """Payment change per encounter whose DRG changed (audited minus final, in currency)."""
    moved = [(e, w) for e, w in changes if abs(w) > 1e-9]
    if not moved:
        return _empty("No DRG changes: payment impact is zero.")
    plt = _plt()
    moved = sorted(moved, key=lambda t: t[1])[:30]
    fig, ax = plt.subplots(figsize=(6.0, max(1.6, 0.28 * len(moved) + 0.8)))
    vals = [w * base_rate for _, w in moved]
    ax.barh([e for e, _ in moved], vals, color=[_RED if v < 0 else _GREEN for v in vals])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Payment change if corrected (audited minus billed)")
    return _to_uri(fig)


def fairness_chart(groups: Sequence[Any], overall: float | None, title: str) -> str:
    """Group rates with intervals; groups too small to judge drawn in grey."""
    if not groups:
        return _empty("No data.")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, max(1.4, 0.3 * len(groups) + 0.8)))
    for i, g in enumerate(groups):
        if g.rate is None:
            continue
        colour = _GREY if g.status != "ok" and g.status != "alert" else (_RED if g.status == "alert" else _BLUE)
        ax.errorbar([g.rate * 100], [i], xerr=[[max(0.0, g.rate * 100 - (g.low or 0) * 100)],
                                               [max(0.0, (g.high or 0) * 100 - g.rate * 100)]],
                    fmt="o", color=colour, capsize=3)
    if overall is not None:
        ax.axvline(overall * 100, color=_GREY, linestyle="--", linewidth=1)
    ax.set_yticks(range(len(groups)), [f"{g.group} (n={g.n})" for g in groups])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"{title} (%)")
    return _to_uri(fig)


def fairness_panels(panels: Sequence[tuple[str, Sequence[Any], float | None]], title: str) -> str:
    """One small panel per attribute: group rates with intervals, overall rate dashed;
    alerts in red, groups too small to judge in grey."""
    plt = _plt()
    rows = sum(len(g) for _, g, _ in panels) + len(panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.0, 0.22 * rows + 0.5 * len(panels)),
                             gridspec_kw={"height_ratios": [max(1, len(g)) for _, g, _ in panels]}, squeeze=False)
    for ax, (label, groups, overall) in zip(axes[:, 0], panels, strict=True):
        for i, g in enumerate(groups):
            if g.rate is None:
                continue
            colour = _RED if g.status == "alert" else (_BLUE if g.status == "ok" else _GREY)
            ax.errorbar([g.rate * 100], [i], xerr=[[max(0.0, g.rate * 100 - (g.low or 0) * 100)],
                                                   [max(0.0, (g.high or 0) * 100 - g.rate * 100)]],
                        fmt="o", color=colour, capsize=3, markersize=4)
        if overall is not None:
            ax.axvline(overall * 100, color=_GREY, linestyle="--", linewidth=1)
        ax.set_yticks(range(len(groups)), [f"{g.group} (n={g.n})" for g in groups], fontsize=7)
        ax.set_ylim(len(groups) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.set_title(label, fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel(f"{title} (%) - dashed line: overall; grey: too few to judge; red: alert")
    fig.tight_layout()
    return _to_uri(fig)
