"""Routing: calibrated confidence, thresholds at a target precision, complexity and routes.

Public API::

    from opencac.routing import route, RoutingPolicy, RouteDecision
    decision = route(result, policy)          # straight_through | coder_review | cdi_query
    policy = fit_policy(records, gold_counts, target_precision=0.95)
    expected_calibration_error(scores, labels); Calibrator("isotonic").fit(scores, labels)
"""

from __future__ import annotations

from opencac.routing.calibration import (
    CalibrationReport,
    Calibrator,
    ReliabilityBin,
    ScoredCode,
    calibration_report,
    expected_calibration_error,
    plot_reliability,
    reliability_bins,
)
from opencac.routing.policy import RoutingPolicy, fit_policy, records_from_results
from opencac.routing.route import (
    CDI_QUERY,
    CODER_REVIEW,
    ROUTES,
    RULES_ADDED,
    STRAIGHT_THROUGH,
    Complexity,
    RouteDecision,
    assess_complexity,
    audit_draw,
    claim_result,
    projected_automation,
    route,
)
from opencac.routing.thresholds import ThresholdFit, bootstrap_precision, fit_thresholds, threshold_for_precision

__all__ = [
    "CDI_QUERY",
    "CODER_REVIEW",
    "ROUTES",
    "RULES_ADDED",
    "STRAIGHT_THROUGH",
    "CalibrationReport",
    "Calibrator",
    "Complexity",
    "ReliabilityBin",
    "RouteDecision",
    "RoutingPolicy",
    "ScoredCode",
    "ThresholdFit",
    "assess_complexity",
    "audit_draw",
    "bootstrap_precision",
    "claim_result",
    "calibration_report",
    "expected_calibration_error",
    "fit_policy",
    "fit_thresholds",
    "plot_reliability",
    "projected_automation",
    "records_from_results",
    "reliability_bins",
    "route",
    "threshold_for_precision",
]
