"""Audit benchmarks: speed of sizing, sampling, scoring, fairness and reports, and the
statistical behaviour of the fairness alerts (false alarms without disparity, detection with a
planted one) on synthetic populations.

Usage::

    .venv/bin/python bench/audit_bench.py [--frame 200000] [--fairness-n 3000] [--trials 100]

Prints a Markdown table; paste it into bench/RESULTS-audit.md with the command.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any

from opencac.audit.fairness import fairness_report
from opencac.audit.metrics import compute_metrics
from opencac.audit.report import build_report, write_report
from opencac.audit.sample_size import attribute_sample_size
from opencac.audit.sampling import simple_random_sample, stratified_sample, targeted_sample
from opencac.audit.scoring import AuditorCoding, AuditWorkbook, CodedEncounter
from opencac.audit.synthetic import synthetic_population


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frame", type=int, default=200_000)
    ap.add_argument("--fairness-n", type=int, default=3000)
    ap.add_argument("--trials", type=int, default=100)
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []

    t, r = timed(lambda: attribute_sample_size(0.95, 0.05, 0.05, 100_000))
    rows.append(("sample size (normal + exact hypergeometric, N=100,000)", f"{t * 1000:.0f} ms -> n={r.recommended}"))
    t, r = timed(lambda: attribute_sample_size(0.95, 0.02, 0.01))
    rows.append(("sample size (exact binomial, 1% expected, +/-2%)", f"{t * 1000:.0f} ms -> n={r.recommended}"))

    t0 = time.perf_counter()
    frame = synthetic_population(args.frame, seed=1)
    rows.append((f"synthetic frame of {args.frame:,} encounters", f"{time.perf_counter() - t0:.2f} s"))
    t, s = timed(lambda: simple_random_sample(frame, 400, seed=7), repeat=1)
    rows.append((f"simple random sample 400 of {args.frame:,}", f"{t:.2f} s ({args.frame / t:,.0f} encounters/s)"))
    t, s = timed(lambda: stratified_sample(frame, 400, seed=7, by="payer", min_per_stratum=30), repeat=1)
    rows.append((f"stratified sample 400 of {args.frame:,} (payer, min 30)", f"{t:.2f} s"))
    t, s = timed(lambda: targeted_sample(frame, 400, seed=7, criteria={"confidence_below": 0.2,
                                                                        "drg_weight_min": 1.5}), repeat=1)
    rows.append((f"targeted sample 400 of {args.frame:,}", f"{t:.2f} s"))

    rng = random.Random(3)
    wb = AuditWorkbook("bench")
    for i in range(1000):
        wb.add(CodedEncounter(f"E{i}", ("I50.9", "I10", "E11.9"), drg="293", drg_weight=0.6737,
                              coded_by=rng.choice(("ai_straight_through", "ai_coder", "coder")),
                              model_version=rng.choice(("m1", "m2")), confidence=rng.random(),
                              service_date="2026-01-01"))
    t0 = time.perf_counter()
    for i in range(1000):
        wrong = rng.random() < 0.15
        wb.record_coding(f"E{i}", AuditorCoding(("I50.23" if wrong else "I50.9", "I10", "E11.9"),
                                                drg="291" if wrong else "293", drg_weight=1.3378 if wrong else 0.6737))
    rows.append(("score 1,000 audited encounters", f"{(time.perf_counter() - t0) * 1000:.0f} ms"))
    t, _ = timed(lambda: compute_metrics(wb.final_scores(), n_boot=2000), repeat=1)
    rows.append(("metrics on 1,000 encounters (2,000 bootstrap replicates)", f"{t:.2f} s"))

    recs = frame[:100_000]
    t, _ = timed(lambda: fairness_report(recs), repeat=1)
    rows.append(("fairness report, 100,000 records x 6 attributes x 3 outcomes", f"{t:.2f} s"))

    fr = fairness_report(synthetic_population(3000, seed=2))
    rep = build_report(wb.final_scores()[:200], wb.findings[:200], audit_name="bench", fairness=fr)
    with tempfile.TemporaryDirectory() as d:
        t, paths = timed(lambda: write_report(rep, d), repeat=1)
        rows.append(("report for 200 encounters: HTML + PDF + CSV", f"{t:.2f} s (PDF {paths['pdf'].stat().st_size / 1024:.0f} KiB)"))

    # statistical behaviour of the alerts
    fa = sum(bool(fairness_report(synthetic_population(args.fairness_n, seed=1000 + k)).alerts)
             for k in range(args.trials))
    rows.append((f"reports with any alert, no disparity (n={args.fairness_n:,}, {args.trials} seeds)",
                 f"{fa}/{args.trials} ({fa / args.trials:.0%}; design <= 5%)"))
    for shift in (-0.05, -0.10, -0.15):
        hit = exact = 0
        for k in range(args.trials):
            rep_k = fairness_report(synthetic_population(args.fairness_n, seed=2000 + k,
                                                         planted={"language": ("Spanish", "accuracy", shift)}))
            alerts = [(t.attribute, g.group) for t, g in rep_k.alerts]
            hit += ("language", "Spanish") in alerts
            exact += alerts == [("language", "Spanish")]
        rows.append((f"planted Spanish accuracy gap {shift:+.0%} (~14% of n={args.fairness_n:,}) found",
                     f"{hit}/{args.trials} (only that alert: {exact}/{args.trials})"))

    print("| Measure | Result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
