"""``opencac audit ...``: sample sizes, samples, scoring reports, fairness and model cards.

Each command is a thin wrapper over a function in :mod:`opencac.audit`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from opencac.cli._common import handle_errors

audit_app = typer.Typer(help="Coding audits: sample size, sampling, scoring reports, fairness, model cards.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Register the ``audit`` command group."""
    app.add_typer(audit_app, name="audit")


@audit_app.command("sample-size")
@handle_errors
def sample_size_cmd(
    confidence: float = typer.Option(0.95, help="Confidence level, e.g. 0.90, 0.95, 0.99."),
    precision: float = typer.Option(0.05, help="Precision (half-width) as a rate, e.g. 0.05 for +/-5 points."),
    expected_error: float = typer.Option(0.05, "--expected-error", help="Expected error rate."),
    population: int | None = typer.Option(None, help="Number of encounters in the frame (omit if very large)."),
    sided: str = typer.Option("two", help="two (rate +/- precision) or one (upper limit only)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the formula."),
) -> None:
    """Attribute-sampling sample size, with the formula written out."""
    from opencac.audit.sample_size import attribute_sample_size

    res = attribute_sample_size(confidence, precision, expected_error, population, sided)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(res.to_dict(), indent=2))
    else:
        typer.echo(res.formula)


def _scope(**kw: Any) -> Any:
    from opencac.audit.scope import AuditScope

    return AuditScope.from_dict({k: v for k, v in kw.items() if v not in (None, [], ())})


@audit_app.command("sample")
@handle_errors
def sample_cmd(
    frame: Path = typer.Option(..., help="Frame CSV/JSON of encounters (see opencac.audit.records)."),
    method: str = typer.Option("random", help="random | stratified | targeted | probe"),
    seed: int = typer.Option(..., help="Random seed (recorded so the sample reproduces)."),
    out: Path = typer.Option(..., help="Output CSV; a .json record of the draw is written beside it."),
    n: int | None = typer.Option(None, "--n", "--size", help="Sample size; omit to size it from the options below."),
    confidence: float = typer.Option(0.95, help="For sizing: confidence level."),
    precision: float = typer.Option(0.05, help="For sizing: precision."),
    expected_error: float = typer.Option(0.05, "--expected-error", help="For sizing: expected error rate."),
    by: str = typer.Option("setting", help="Stratified: stratum column (or confidence_band, age_band)."),
    allocation: str = typer.Option("proportional", help="Stratified: proportional | equal."),
    min_per_stratum: int = typer.Option(0, help="Stratified: minimum per stratum."),
    drg_weight_min: float | None = typer.Option(None, help="Targeted: DRG relative weight at or above."),
    confidence_below: float | None = typer.Option(None, help="Targeted: AI confidence below."),
    edit: list[str] = typer.Option([], "--edit", help="Targeted: edit id that fired (repeatable)."),
    straight_through_only: bool = typer.Option(False, help="Targeted: AI straight-through encounters only."),
    from_probe: Path | None = typer.Option(None, help="Draw the full sample from this probe's .json record."),
    probe_errors: int | None = typer.Option(None, help="Errors found in the probe (with --from-probe)."),
    date_from: str | None = typer.Option(None, help="Scope: first service date (YYYY-MM-DD)."),
    date_to: str | None = typer.Option(None, help="Scope: last service date."),
    setting: list[str] = typer.Option([], help="Scope: setting (repeatable)."),
    coded_by: list[str] = typer.Option([], help="Scope: ai_straight_through | ai_coder | coder (repeatable)."),
    model_version: list[str] = typer.Option([], help="Scope: model version (repeatable)."),
    coder: list[str] = typer.Option([], help="Scope: coder (repeatable)."),
    payer: list[str] = typer.Option([], help="Scope: payer (repeatable)."),
    drg: list[str] = typer.Option([], help="Scope: MS-DRG (repeatable)."),
    code_family: list[str] = typer.Option([], help="Scope: code family, e.g. I50 or E08-E13 (repeatable)."),
    confidence_min: float | None = typer.Option(None, help="Scope: AI confidence at least."),
    confidence_max: float | None = typer.Option(None, help="Scope: AI confidence below."),
) -> None:
    """Draw a reproducible audit sample from a frame."""
    from opencac.audit.records import read_frame
    from opencac.audit.sample_size import attribute_sample_size
    from opencac.audit.sampling import draw_sample, full_sample_from_probe
    from opencac.audit.workfile import sample_from_dict
    from opencac.errors import SamplingError

    scope = _scope(date_from=date_from, date_to=date_to, settings=setting, coded_by=coded_by,
                   model_versions=model_version, coders=coder, payers=payer, drgs=drg, code_families=code_family,
                   confidence_min=confidence_min, confidence_max=confidence_max)
    records = scope.apply(read_frame(frame))
    calc = None
    if from_probe is not None:
        if probe_errors is None:
            raise SamplingError("--from-probe needs --probe-errors (errors found in the probe sample)")
        probe = sample_from_dict(json.loads(from_probe.read_text(encoding="utf-8")))
        sample = full_sample_from_probe(records, probe, probe_errors, confidence, precision)
        calc = sample.size_calc
    else:
        if n is None:
            if method in ("targeted", "probe"):
                raise SamplingError(f"--n is required for a {method} sample")
            calc = attribute_sample_size(confidence, precision, expected_error, len(records))
            n = min(calc.recommended, len(records))
        params: dict[str, Any] = {"n": n}
        if method == "stratified":
            params.update(by=by, allocation=allocation, min_per_stratum=min_per_stratum)
        elif method == "targeted":
            params["criteria"] = {"drg_weight_min": drg_weight_min, "confidence_below": confidence_below,
                                  "edits": tuple(edit), "straight_through_only": straight_through_only}
        sample = draw_sample(records, method, seed, **params)
        sample.size_calc = calc
    by_id = {r.encounter_id: r for r in records}
    out.parent.mkdir(parents=True, exist_ok=True)
    import csv

    with out.open("w", newline="", encoding="utf-8") as fh:
        w = None
        for item in sample.items:
            row = {"sample_order": item.order, "stratum": item.stratum or "", "reason": item.reason,
                   "risk": "" if item.risk is None else item.risk, **by_id[item.encounter_id].to_row()}
            if w is None:
                w = csv.DictWriter(fh, fieldnames=list(row))
                w.writeheader()
            w.writerow(row)
    record = {"scope": scope.to_dict(), **sample.to_dict()}
    rec_path = out.with_suffix(".json")
    rec_path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    if calc is not None:
        typer.echo(calc.formula)
    for note in sample.notes:
        typer.echo(note)
    if sample.strata:
        typer.echo("strata: " + "; ".join(f"{h} {v['sample']}/{v['population']}" for h, v in sample.strata.items()))
    typer.echo(f"drew {sample.size} of {sample.frame_size} encounters ({sample.method}, seed {sample.seed}, "
               f"frame sha256 {sample.frame_hash[:12]}) -> {out} and {rec_path}")


@audit_app.command("score")
@handle_errors
def score_cmd(
    findings: Path = typer.Option(..., help="Audit work file (CSV or JSON; see opencac.audit.workfile)."),
    out_dir: Path = typer.Option(..., help="Directory for report.html, report.pdf and CSVs."),
    base_rate: float | None = typer.Option(None, help="Payment per relative weight 1.0 (default 6500)."),
    records: Path | None = typer.Option(None, help="Frame with demographics, to add the fairness section."),
    min_group: int = typer.Option(30, help="Fairness: smallest group size judged."),
    threshold: float = typer.Option(0.05, help="Fairness: gap that raises an alert."),
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Also write the PDF."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Score an audit and write the HTML/PDF report and CSV exports."""
    from opencac.audit.fairness import fairness_report, records_with_outcomes
    from opencac.audit.metrics import DEFAULT_BASE_RATE
    from opencac.audit.records import read_frame
    from opencac.audit.report import build_report, write_report
    from opencac.audit.workfile import load_audit_file

    af = load_audit_file(findings)
    scores = af.workbook.final_scores()
    fair = None
    if records is not None:
        recs = records_with_outcomes(read_frame(records), {s.encounter_id: s.accurate for s in scores})
        fair = fairness_report(recs, threshold=threshold, min_group_size=min_group)
    rep = build_report(scores, af.workbook.findings, audit_name=af.name, organisation=af.organisation,
                       auditor=af.auditor, mode=af.mode, scope=af.scope, sample=af.sample, kappa=af.kappa(),
                       fairness=fair, base_rate=base_rate or af.base_rate or DEFAULT_BASE_RATE, seed=seed)
    paths = write_report(rep, out_dir, pdf=pdf)
    m = rep.metrics
    typer.echo(f"encounters {m.n_encounters}; encounter accuracy {m.encounter_accuracy.fmt()}; "
               f"precision {m.precision.fmt()}; recall {m.recall.fmt()}; DRG accuracy {m.drg_accuracy.fmt()}; "
               f"payment impact {m.financial_impact_net:+,.0f}")
    if rep.kappa is not None:
        typer.echo(f"kappa {rep.kappa.kappa:.3f} ({rep.kappa.interpretation}) on {rep.kappa.n} double audits")
    for name, p in paths.items():
        typer.echo(f"{name}: {p}")


@audit_app.command("fairness")
@handle_errors
def fairness_cmd(
    records: Path = typer.Option(..., help="Frame CSV/JSON with demographics and accurate/automated/queried."),
    attribute: list[str] = typer.Option([], help="Attribute(s) (default: age_band sex race ethnicity language payer)."),
    outcome: list[str] = typer.Option([], help="Outcome(s): accuracy automation query (default all)."),
    threshold: float = typer.Option(0.05, help="Gap (rate points) that raises an alert."),
    alpha: float = typer.Option(0.05, help="Significance level (Holm-adjusted)."),
    min_group: int = typer.Option(30, help="Groups smaller than this are 'too few to judge'."),
    reference: str = typer.Option("overall", help="overall | best"),
    gap_only: bool = typer.Option(False, help="Alert on the gap alone, without requiring significance."),
    out_dir: Path | None = typer.Option(None, help="Write fairness.json and fairness.csv here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Accuracy, automation and query rates by patient group, with disparities and alerts.

    Exits 1 when an alert is raised (so it can gate a pipeline)."""
    from opencac.audit.fairness import ATTRIBUTES, OUTCOMES, fairness_report
    from opencac.audit.records import read_frame

    rep = fairness_report(read_frame(records), attributes=tuple(attribute) or ATTRIBUTES,
                          outcomes=tuple(outcome) or tuple(OUTCOMES), threshold=threshold, alpha=alpha,
                          min_group_size=min_group, reference=reference, require_significance=not gap_only)
    if out_dir is not None:
        import csv

        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "fairness.json").write_text(json.dumps(rep.to_dict(), indent=2), encoding="utf-8")
        rows = rep.rows()
        with (out_dir / "fairness.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["attribute"])
            w.writeheader()
            w.writerows(rows)
    if as_json:
        typer.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        for t in rep.tables:
            typer.echo(f"{OUTCOMES[t.outcome][0]} by {t.attribute} (reference {t.reference} "
                       f"{(t.reference_rate or 0):.1%})")
            for g in t.groups:
                if g.status == "too few to judge":
                    typer.echo(f"  {g.group:<34} n={g.n:<6} too few to judge")
                    continue
                diff = "" if g.difference is None else f"{g.difference * 100:+.1f} pts"
                p = "" if g.p_adjusted is None else f"p_adj={g.p_adjusted:.3g}"
                typer.echo(f"  {g.group:<34} n={g.n:<6} {(g.rate or 0):6.1%}  {diff:>10}  {p:<12} {g.status}")
        for n in rep.notes:
            typer.echo(n)
        typer.echo(f"{len(rep.alerts)} alert(s)")
    if rep.alerts:
        raise typer.Exit(1)


@audit_app.command("model-card")
@handle_errors
def model_card_cmd(
    model: Path = typer.Option(..., help="Model directory with manifest.json (and optional model_card.json)."),
    out_dir: Path | None = typer.Option(None, help="Where to write model_card.md/.html (default: the model dir)."),
    fairness_records: Path | None = typer.Option(None, help="Frame with outcomes by group for the fairness section."),
    local: bool = typer.Option(True, "--local/--test-data", help="Whether the fairness records are local (deployed) data."),
    min_group: int = typer.Option(30, help="Fairness: smallest group size judged."),
) -> None:
    """Write a model card (Markdown + HTML) organised like the ONC HTI-1 source attributes."""
    from opencac.audit.fairness import fairness_report
    from opencac.audit.model_card import build_model_card, load_model_card_inputs
    from opencac.audit.records import read_frame

    manifest, narrative = load_model_card_inputs(model)
    fr = fairness_report(read_frame(fairness_records), min_group_size=min_group) if fairness_records else None
    card = build_model_card(manifest, narrative, fairness=None if local else fr, local_fairness=fr if local else None)
    paths = card.write(out_dir or model)
    typer.echo(f"model card for {card.name} ({card.version}): {paths['markdown']} and {paths['html']}")

