"""Audit reports for a compliance officer: HTML (Jinja2), PDF (WeasyPrint) and CSV.

The report says, in plain headings: what was audited, how it was sampled (method, seed,
frame fingerprint, sample-size formula), the results with their intervals, the findings
and how each was defended, fairness across patient groups, and a sign-off block.
Templates live in ``opencac/ui/templates/audit_report.html`` (read as package data; the
audit layer does not import the UI layer).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opencac.audit.fairness import ATTRIBUTE_LABELS, OUTCOMES, TOO_FEW, FairnessReport
from opencac.audit.metrics import (
    DEFAULT_BASE_RATE,
    AuditMetrics,
    KappaResult,
    ReliabilityBin,
    TrendPoint,
    compute_metrics,
    group_label_coded_by,
    kind_counts,
    metrics_by,
    reliability,
    root_cause_counts,
    trend_by_model_version,
)
from opencac.audit.sampling import Sample
from opencac.audit.scope import AuditScope
from opencac.audit.scoring import EncounterScore, Finding
from opencac.errors import AuditReportError

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "ui" / "templates"

ROOT_CAUSE_LABELS = {"documentation": "Documentation", "guideline_application": "Guideline application",
                     "ai_error": "AI error", "coder_error": "Coder error", "edit_missed": "Edit missed"}
KIND_LABELS = {"incorrect": "Wrong code", "missing": "Code missing", "extra": "Code not supported",
               "principal": "Principal diagnosis", "sequencing": "Sequencing", "poa": "POA indicator",
               "drg": "MS-DRG change"}


@dataclass
class AuditReport:
    """Everything a report shows. Build with :func:`build_report`.

    Attributes:
        title: Report title.
        audit_name: Name of the audit.
        organisation: Organisation shown in the header.
        auditor: Lead auditor.
        mode: ``blind`` or ``review``.
        scope: Population definition.
        sample: The drawn sample (method, seed, frame hash, size calculation).
        scores: Encounter scores after determinations.
        findings: All findings with their trail.
        metrics: Headline metrics.
        by_coded_by: Metrics for AI straight-through vs AI + coder vs coder alone.
        trend: Accuracy per model version.
        reliability: Confidence vs accuracy bins, and the ECE.
        kappa: Inter-rater agreement, when encounters were audited twice.
        fairness: Fairness report, when demographics were available.
        generated_at: UTC timestamp.
        sign_off: (role, name) lines for signatures.
    """

    title: str
    audit_name: str
    organisation: str
    auditor: str
    mode: str
    scope: AuditScope | None
    sample: Sample | None
    scores: list[EncounterScore]
    findings: list[Finding]
    metrics: AuditMetrics
    by_coded_by: dict[str, AuditMetrics]
    trend: list[TrendPoint]
    reliability: tuple[list[ReliabilityBin], float | None]
    kappa: KappaResult | None = None
    fairness: FairnessReport | None = None
    generated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    sign_off: list[tuple[str, str]] = field(default_factory=lambda: [
        ("Lead auditor", ""), ("Compliance officer", ""), ("HIM director", "")])


def build_report(
    scores: Sequence[EncounterScore],
    findings: Sequence[Finding],
    *,
    audit_name: str = "Coding quality audit",
    title: str | None = None,
    organisation: str = "",
    auditor: str = "",
    mode: str = "blind",
    scope: AuditScope | None = None,
    sample: Sample | None = None,
    kappa: KappaResult | None = None,
    fairness: FairnessReport | None = None,
    base_rate: float = DEFAULT_BASE_RATE,
    confidence: float = 0.95,
    seed: int = 0,
) -> AuditReport:
    """Compute all metrics and assemble an :class:`AuditReport`.

    Raises:
        AuditReportError: No scored encounters.
    """
    if not scores:
        raise AuditReportError("nothing to report: no encounter has been scored yet")
    kw = {"base_rate": base_rate, "confidence": confidence, "seed": seed}
    return AuditReport(
        title=title or f"Coding audit report: {audit_name}", audit_name=audit_name, organisation=organisation,
        auditor=auditor, mode=mode, scope=scope, sample=sample, scores=list(scores), findings=list(findings),
        metrics=compute_metrics(scores, **kw), by_coded_by=metrics_by(scores, group_label_coded_by, **kw),
        trend=trend_by_model_version(scores, confidence), reliability=reliability(scores), kappa=kappa,
        fairness=fairness,
    )


def _charts(report: AuditReport) -> dict[str, Any]:
    from opencac.audit import charts

    out: dict[str, Any] = {
        "trend": charts.accuracy_trend(report.trend),
        "errors": charts.error_categories(
            {KIND_LABELS[k]: v for k, v in kind_counts(report.findings).items()},
            {ROOT_CAUSE_LABELS[k]: v for k, v in root_cause_counts(report.findings).items()}),
        "reliability": charts.reliability_chart(report.reliability[0]),
        "drg": charts.drg_impact([(s.encounter_id, s.weight_change) for s in report.scores],
                                 report.metrics.base_rate),
        "fairness": None,
    }
    if report.fairness is not None:
        panels = [(ATTRIBUTE_LABELS.get(t.attribute, t.attribute), t.groups, t.overall_rate)
                  for t in report.fairness.tables if t.outcome == "accuracy" and len(t.groups) > 1]
        if panels:
            out["fairness"] = charts.fairness_panels(panels, OUTCOMES["accuracy"][0])
    return out


def fairness_by_attribute(fr: FairnessReport) -> list[dict[str, Any]]:
    """Regroup fairness tables per attribute: rows = groups, one cell per outcome."""
    out: dict[str, dict[str, Any]] = {}
    for t in fr.tables:
        a = out.setdefault(t.attribute, {"attribute": t.attribute, "outcomes": [], "rows": {}, "reference": {}})
        a["outcomes"].append(t.outcome)
        a["reference"][t.outcome] = t.reference_rate
        for g in t.groups:
            a["rows"].setdefault(g.group, {})[t.outcome] = g
    return list(out.values())


def _summary(report: AuditReport) -> list[str]:
    m = report.metrics
    lines = [
        f"{m.n_encounters} encounters were audited. {m.encounter_accuracy.k} of them "
        f"({(m.encounter_accuracy.value or 0):.1%}; interval {(m.encounter_accuracy.low or 0):.1%} to "
        f"{(m.encounter_accuracy.high or 0):.1%}) were coded fully correctly.",
    ]
    if m.precision.value is not None:
        lines.append(f"Of the codes billed, {m.precision.value:.1%} were supported by the audit (precision); "
                     f"of the codes the audit found, {(m.recall.value or 0):.1%} had been billed (recall).")
    if m.drg_accuracy.n:
        lines.append(f"The MS-DRG was correct for {m.drg_accuracy.k} of {m.drg_accuracy.n} grouped encounters "
                     f"({(m.drg_accuracy.value or 0):.1%}).")
    direction = "underpaid" if m.financial_impact_net > 0 else "overpaid"
    if m.financial_impact_abs:
        lines.append(f"Correcting the DRGs would change payment by {m.financial_impact_net:+,.0f} in total "
                     f"(the sample was {direction} on balance; {m.overpaid_encounters} over-coded and "
                     f"{m.underpaid_encounters} under-coded encounters), at a base rate of {m.base_rate:,.0f}.")
    else:
        lines.append("No DRG change was found, so there is no payment impact in this sample.")
    if report.fairness is not None:
        fr = report.fairness
        n_alerts = len(fr.alerts)
        judged = sum(1 for t in fr.tables for g in t.groups if g.status != TOO_FEW)
        too_few = sum(1 for t in fr.tables for g in t.groups if g.status == TOO_FEW)
        if n_alerts:
            lines.append(f"Fairness: {n_alerts} alert(s) - see the fairness section.")
        elif judged == 0:
            lines.append(f"Fairness: every patient group had fewer than {fr.min_group_size} encounters, so no "
                         "group could be judged; a larger sample is needed to assess fairness.")
        else:
            extra = f" ({too_few} group results had too few encounters to judge)" if too_few else ""
            lines.append("Fairness: no patient group had a significant accuracy, automation or query-rate gap "
                         f"above {fr.threshold:.0%}{extra}.")
    return lines


def render_html(report: AuditReport, template: str = "audit_report.html") -> str:
    """Render the report as a self-contained HTML page (charts inline as SVG).

    Raises:
        AuditReportError: Template missing or failing to render.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{v:.1%}"
    env.filters["money"] = lambda v: f"{v:+,.0f}"
    env.filters["pval"] = lambda v: "n/a" if v is None else ("<0.001" if v < 0.001 else f"{v:.3f}")
    try:
        tpl = env.get_template(template)
        return tpl.render(r=report, charts=_charts(report), summary=_summary(report),
                          kind_labels=KIND_LABELS, cause_labels=ROOT_CAUSE_LABELS,
                          attr_labels=ATTRIBUTE_LABELS, outcomes=OUTCOMES, too_few=TOO_FEW,
                          fair=fairness_by_attribute(report.fairness) if report.fairness else [])
    except jinja2.TemplateError as exc:
        raise AuditReportError(f"report template {template!r} failed: {exc}") from exc


def html_to_pdf(html: str, path: str | Path) -> Path:
    """Write ``html`` to a PDF with WeasyPrint.

    Raises:
        AuditReportError: WeasyPrint is missing or fails.
    """
    try:
        from weasyprint import HTML
    except Exception as exc:  # pragma: no cover - depends on system libraries
        raise AuditReportError(f"PDF output needs WeasyPrint and its system libraries: {exc}") from exc
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    import logging

    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    HTML(string=html, base_url=str(TEMPLATE_DIR)).write_pdf(str(p))
    return p


def write_csvs(report: AuditReport, out_dir: str | Path) -> dict[str, Path]:
    """CSV exports: one row per encounter score, per code verdict, and per finding
    (plus fairness rows when present)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def write(name: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
        p = d / name
        with p.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for row in rows:
                w.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in row.items()})
        paths[name.rsplit(".", 1)[0]] = p

    enc_cols = ["encounter_id", "coded_by", "model_version", "confidence", "service_date", "accurate", "tp",
                "fp", "fn", "correct", "incorrect", "missing", "extra", "principal_correct",
                "sequencing_correct", "poa_mismatches", "drg_correct", "final_drg", "audited_drg",
                "weight_change"]
    rows = [s.to_dict() for s in report.scores]
    for r in rows:
        r["payment_change"] = round(r["weight_change"] * report.metrics.base_rate, 2)
    write("encounters.csv", rows, [*enc_cols, "payment_change"])
    code_rows = [{"encounter_id": s.encounter_id, "verdict": v.verdict, "final_code": v.final_code,
                  "audited_code": v.audited_code} for s in report.scores for v in s.verdicts]
    write("codes.csv", code_rows, ["encounter_id", "verdict", "final_code", "audited_code"])
    f_rows = []
    for f in report.findings:
        row = f.to_dict()
        row["responses"] = [f"{r['by']}: {r['text']}" for r in row["responses"]]
        f_rows.append(row)
    write("findings.csv", f_rows, ["id", "encounter_id", "kind", "final_code", "audited_code", "root_cause",
                                   "rationale", "citation", "override", "responses", "determination",
                                   "determination_note", "financial_impact"])
    if report.fairness is not None:
        write("fairness.csv", report.fairness.rows(),
              ["attribute", "outcome", "group", "n", "k", "rate", "low", "high", "status", "reference",
               "reference_rate", "difference", "ratio", "test", "p_value", "p_adjusted"])
    return paths


def write_report(report: AuditReport, out_dir: str | Path, pdf: bool = True) -> dict[str, Path]:
    """Write ``report.html``, ``report.pdf`` (unless ``pdf`` is False) and the CSVs.

    Returns:
        Name -> path of every file written.
    """
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    html = render_html(report)
    paths = {"html": d / "report.html"}
    paths["html"].write_text(html, encoding="utf-8")
    if pdf:
        paths["pdf"] = html_to_pdf(html, d / "report.pdf")
    paths.update(write_csvs(report, d))
    return paths
