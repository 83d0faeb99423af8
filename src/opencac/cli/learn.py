"""``opencac learn``, ``opencac models ...``, ``opencac thresholds ...``, ``opencac route``.

Thin wrappers over :mod:`opencac.learning` and :mod:`opencac.routing`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from opencac.cli._common import handle_errors

models_app = typer.Typer(help="Model versions: list, register, compare, promote, roll back.", no_args_is_help=True)
thresholds_app = typer.Typer(help="Routing thresholds at a target precision.", no_args_is_help=True)

RegistryOpt = Annotated[
    Path | None, typer.Option("--registry", help="Registry directory (default $OPENCAC_MODEL_REGISTRY or the user data dir).")
]


def register(app: typer.Typer) -> None:
    """Add ``learn``, ``models``, ``thresholds`` and ``route`` to the ``opencac`` app."""
    app.command("learn")(learn)
    app.command("route")(route_cmd)
    app.add_typer(models_app, name="models")
    app.add_typer(thresholds_app, name="thresholds")


def _context(setting: str | None, as_of: str | None) -> Any:
    from opencac.coding.types import SETTINGS, EncounterContext
    from opencac.errors import InputError

    ctx = EncounterContext()
    if setting:
        if setting not in SETTINGS:
            raise InputError(f"unknown setting {setting!r}.", options=SETTINGS)
        ctx.setting = setting
    if as_of:
        try:
            ctx.date_of_service = dt.date.fromisoformat(as_of)
        except ValueError:
            raise InputError(f"--as-of {as_of!r} is not a date; expected YYYY-MM-DD.") from None
    return ctx


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


# --- learn -------------------------------------------------------------------------------
@handle_errors
def learn(
    model: Annotated[Path, typer.Option("--model", "-m", help="The model directory to learn from.")],
    corpus: Annotated[list[Path], typer.Option("--corpus", "-c", help="Coded documents: a CodiEsp split dir or a JSONL file (repeatable).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the learnt model (a new directory).")],
    org: Annotated[str, typer.Option("--org", help="Organisation the decisions come from (per-organisation priors).")] = "default",
    engine_update: Annotated[bool, typer.Option("--engine-update/--overlay-only", help="Also call the engine's own incremental update.")] = True,
    memory_positives: Annotated[bool, typer.Option("--memory-positives/--no-memory-positives", help="Let the feedback memory vote for accepted codes.")] = True,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Update only the code systems whose update raises MAP on the batch's own notes (cross-fitted; batches of 20+ notes).")] = True,
    registry: RegistryOpt = None,
    validation: Annotated[Path | None, typer.Option("--validation", help="With --registry: score on this fixed validation set and register (promoted only if not worse).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of service for validation coding (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Ingest coded documents as accepted coder decisions through the incremental path; write MODEL2."""
    from opencac.learning.evaluation import load_documents
    from opencac.learning.online import OnlineLearner

    learner = OnlineLearner(model, update_engine=engine_update, memory_positives=memory_positives, check=check)
    docs = load_documents(corpus, org=org)
    rep = learner.learn_documents(docs)
    learner.save(out)
    data: dict[str, Any] = {"model": str(out), **rep.to_dict()}
    if registry is not None and validation is not None:
        data["registry"] = _register(out, registry, validation, as_of)
    if as_json:
        _echo_json(data)
        return
    typer.echo(
        f"learnt {rep.documents} documents ({rep.examples} accepted codes) in {rep.seconds:.1f} s; "
        f"engine update: {'yes' if rep.engine_updated else 'no'}; wrote {out}"
    )
    for system, c in sorted(rep.check.items()):
        typer.echo(f"update check {system}: MAP {c['map_before']:.4f} -> {c['map_after']:.4f} on {c['docs']} unseen "
                   f"notes: {'updated' if rep.engine_systems and system in rep.engine_systems else 'not updated'}")
    for n in rep.notes:
        typer.echo(f"note: {n}")
    if "registry" in data:
        r = data["registry"]
        typer.echo(f"registered {r['version']} (map {r['metrics'].get('map', 0):.4f}); "
                   f"{'promoted' if r['promoted'] else 'not promoted: ' + '; '.join(r['notes'])}")


def _register(model: Path, registry: Path | None, validation: Path | None, as_of: str | None,
              parent: str | None = None) -> dict[str, Any]:
    from opencac.learning.evaluation import evaluate_model
    from opencac.learning.registry import ModelRegistry

    metrics: dict[str, float] = {}
    vhash = None
    if validation is not None:
        metrics, vhash = evaluate_model(model, validation, _context(None, as_of))
    reg = ModelRegistry(registry)
    mv, promoted = reg.register(model, metrics, validation_hash=vhash, parent=parent)
    return {"version": mv.version, "promoted": promoted, "metrics": mv.metrics, "notes": mv.notes}


# --- models ------------------------------------------------------------------------------
@models_app.command("list")
@handle_errors
def models_list(registry: RegistryOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List registered model versions (production marked with *)."""
    from opencac.learning.registry import ModelRegistry

    versions = ModelRegistry(registry).list()
    if as_json:
        _echo_json([v.to_dict() for v in versions])
        return
    if not versions:
        typer.echo("no model versions registered (opencac models register MODEL --validation DIR)")
        return
    typer.echo(f"{'':1} {'version':8} {'status':10} {'map':>7} {'map_d':>7} {'map_p':>7} {'created':20} source")
    for v in versions:
        m = v.metrics
        f = lambda k: f"{m[k]:.4f}" if k in m else "-"  # noqa: E731
        typer.echo(f"{'*' if v.status == 'production' else ' '} {v.version:8} {v.status:10} {f('map'):>7} "
                   f"{f('map_d'):>7} {f('map_p'):>7} {v.created:20} {v.source}")


@models_app.command("register")
@handle_errors
def models_register(
    model: Annotated[Path, typer.Argument(help="Model directory.")],
    registry: RegistryOpt = None,
    validation: Annotated[Path | None, typer.Option("--validation", help="Fixed validation set (CodiEsp dir or JSONL) to score on.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of service for validation coding.")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="The version it was learnt from.")] = None,
) -> None:
    """Register a model directory as a new version (auto-promoted only if not worse on validation)."""
    r = _register(model, registry, validation, as_of, parent)
    typer.echo(f"registered {r['version']}; " + ("promoted to production" if r["promoted"] else
                                                 "not promoted: " + "; ".join(r["notes"])))


@models_app.command("compare")
@handle_errors
def models_compare(
    a: Annotated[str, typer.Argument(help="Version A (e.g. v0001).")],
    b: Annotated[str, typer.Argument(help="Version B.")],
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Compare two versions' validation metrics (B - A), training data and code-set versions."""
    from opencac.learning.registry import ModelRegistry

    c = ModelRegistry(registry).compare(a, b)
    if as_json:
        _echo_json(c)
        return
    typer.echo(f"{'metric':10} {a:>9} {b:>9} {'delta':>9}")
    for k, v in c["metrics"].items():
        fmt = lambda x: f"{x:.4f}" if isinstance(x, float) else "-"  # noqa: E731
        typer.echo(f"{k:10} {fmt(v[a]):>9} {fmt(v[b]):>9} {fmt(v['delta']):>9}")
    typer.echo(f"same validation set: {c['same_validation_set']}; same training data: {c['same_training_data']}")
    for k, (x, y) in c["codeset_changes"].items():
        typer.echo(f"code set {k}: {x} -> {y}")


@models_app.command("promote")
@handle_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="Version to put in production.")],
    registry: RegistryOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if it scores worse on validation.")] = False,
) -> None:
    """Put a version in production (refused when it scores worse than production, unless --force)."""
    from opencac.learning.registry import ModelRegistry

    mv = ModelRegistry(registry).promote(version, force=force, by="cli")
    typer.echo(f"{mv.version} is now in production ({mv.path})")


@models_app.command("rollback")
@handle_errors
def models_rollback(registry: RegistryOpt = None) -> None:
    """Return production to the version before the current one."""
    from opencac.learning.registry import ModelRegistry

    mv = ModelRegistry(registry).rollback(by="cli")
    typer.echo(f"rolled back: {mv.version} is now in production ({mv.path})")


@models_app.command("retrain")
@handle_errors
def models_retrain(
    out: Annotated[Path, typer.Option("--out", "-o", help="The new model directory.")],
    corpus: Annotated[list[Path], typer.Option("--corpus", "-c", help="Coded corpora to train on (CodiEsp dir / JSONL; repeatable).")],
    registry: RegistryOpt = None,
    validation: Annotated[Path | None, typer.Option("--validation", help="Fixed validation set: score and register (promoted only if not worse).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of service for validation coding.")] = None,
) -> None:
    """Full retrain from all coded history (given as corpora), then register it when --validation is given."""
    from opencac.learning.retrain import retrain

    rep = retrain([], out, corpus)
    typer.echo(f"retrained on {len(rep.corpora)} corpus/corpora in {rep.seconds:.0f} s; wrote {out}")
    if validation is not None:
        r = _register(out, registry, validation, as_of)
        typer.echo(f"registered {r['version']}; " + ("promoted to production" if r["promoted"] else
                                                     "not promoted: " + "; ".join(r["notes"])))


# --- thresholds --------------------------------------------------------------------------
@thresholds_app.command("fit")
@handle_errors
def thresholds_fit(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model directory.")],
    validation: Annotated[Path, typer.Option("--validation", help="Coded validation corpus (CodiEsp dir or JSONL).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Policy JSON to write.")],
    target_precision: Annotated[float, typer.Option("--target-precision", help="Code-level precision to meet.")] = 0.95,
    setting: Annotated[str | None, typer.Option("--setting", help="Encounter setting of the validation notes.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of service (YYYY-MM-DD).")] = None,
    rules: Annotated[bool, typer.Option("--rules/--no-rules", help="Apply the rules layer (edits/queries count).")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a reliability diagram (.png or .svg).")] = None,
    method: Annotated[str, typer.Option("--method", help="bayes (a lower confidence bound of precision must meet the target; default), wilson, or empirical (the observed precision must).")] = "bayes",
    confidence: Annotated[float, typer.Option("--confidence", help="One-sided confidence of the bound (bayes, wilson).")] = 0.7,
    prior_weight: Annotated[float | None, typer.Option("--prior-weight", help="bayes: weight of the engine's calibrated confidences as evidence (default 1; 0 without a trained model).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fit per-system thresholds that meet the target precision; print recall and projected automation."""
    from opencac.routing.fit import fit_policy_on_corpus

    pol, results = fit_policy_on_corpus(model, validation, target_precision, _context(setting, as_of), rules=rules,
                                        method=method, confidence=confidence, prior_weight=prior_weight)
    pol.save(out)
    if plot is not None:
        _plot(pol, results, validation, plot)
    if as_json:
        _echo_json({"policy": str(out), "fits": pol.fits, "projection": {k: v for k, v in pol.projection.items()
                                                                        if k != "curve"}, "ece": pol.meta.get("ece")})
        return
    _print_fits(pol)
    typer.echo(f"wrote {out}")


def _plot(pol: Any, results: Any, validation: Path, path: Path) -> None:
    from opencac.learning.evaluation import load_documents
    from opencac.routing import calibration_report, plot_reliability, records_from_results

    docs = load_documents(validation)
    gold = {s: {d.id: d.codes.get(s, []) for d in docs} for s in ("icd10cm", "icd10pcs")}
    recs, _ = records_from_results(results, gold)
    plot_reliability(calibration_report(recs, by_setting=False), path, title="Reliability (validation)")


def _print_fits(pol: Any) -> None:
    how = pol.meta.get("threshold_method") or {}
    typer.echo(f"target precision {pol.target_precision:.2f}" + (
        f" (method {how.get('method')}, confidence {how.get('confidence')}, prior weight {how.get('prior_weight')})"
        if how else ""))
    typer.echo(f"{'group':24} {'threshold':>9} {'precision':>9} {'bound':>6} {'recall':>7} {'codes':>6} {'ECE':>6}")
    for k, f in sorted(pol.fits.items()):
        t = f"{f['threshold']:.4f}" if f["threshold"] is not None else "none"
        ece = pol.meta.get("ece", {}).get(k)
        bound = f.get("precision_bound")
        typer.echo(f"{k:24} {t:>9} {f['precision']:>9.3f} {(f'{bound:.3f}' if bound is not None else '-'):>6} "
                   f"{f['recall']:>7.3f} {f['selected']:>6} {(f'{ece:.3f}' if ece is not None else '-'):>6}")
    pr = pol.projection
    if pr:
        typer.echo(f"projected automation: {pr.get('straight_through_rate', 0):.1%} of {pr.get('encounters', 0)} "
                   f"encounters straight through; routes {pr.get('routes', {})}")
        typer.echo("code-level automation (share of gold codes above threshold): " + ", ".join(
            f"{k.split(':')[0]} {f['recall']:.1%}" for k, f in sorted(pol.fits.items()) if k.endswith(":*")))


@thresholds_app.command("show")
@handle_errors
def thresholds_show(policy: Annotated[Path, typer.Argument(help="Policy JSON.")],
                    as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a policy's thresholds, what they achieved on validation and the projected automation."""
    from opencac.routing import RoutingPolicy

    pol = RoutingPolicy.load(policy)
    if as_json:
        _echo_json(pol.to_dict())
        return
    _print_fits(pol)
    curve = pol.projection.get("curve") or []
    if curve:
        typer.echo("target  straight-through  " + "  ".join(f"recall {k.split(':')[0]}" for k in curve[0]["recall"]))
        for p in curve[::5] + [curve[-1]]:
            typer.echo(f"{p['target_precision']:.2f}    {p['straight_through_rate']:>8.1%}          "
                       + "  ".join(f"{v:>13.1%}" for v in p["recall"].values()))


@thresholds_app.command("set")
@handle_errors
def thresholds_set(
    policy: Annotated[Path, typer.Argument(help="Policy JSON (fitted with a projection curve).")],
    target_precision: Annotated[float, typer.Option("--target-precision", help="New target precision (0.80-0.99).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here (default: in place).")] = None,
) -> None:
    """Move a fitted policy to another target precision using its pre-computed curve."""
    from opencac.routing import RoutingPolicy
    from opencac.routing.fit import retarget

    new = retarget(RoutingPolicy.load(policy), target_precision)
    new.save(out or policy)
    typer.echo(f"target precision {new.target_precision:.2f}: thresholds {new.thresholds}; projected "
               f"straight-through {new.projection.get('straight_through_rate', 0):.1%}")


# --- route -------------------------------------------------------------------------------
@handle_errors
def route_cmd(
    note: Annotated[Path, typer.Argument(help="The note (.txt).")],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Model directory (omit: out-of-the-box engine).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", "-p", help="Routing policy JSON (omit: defaults).")] = None,
    setting: Annotated[str | None, typer.Option("--setting", help="Encounter setting.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of service (YYYY-MM-DD).")] = None,
    rules: Annotated[bool, typer.Option("--rules/--no-rules", help="Apply the rules layer before routing.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Code NOTE and say where it goes: straight_through, coder_review (with priority) or cdi_query."""
    from opencac.learning.online import LearnedEngine
    from opencac.routing import RoutingPolicy, claim_result, route
    from opencac.text.document import read_note_bytes

    text = read_note_bytes(note.read_bytes(), name=note.name)
    pol = RoutingPolicy.load(policy) if policy else RoutingPolicy()
    res = LearnedEngine.load(model).code(text, doc_id=note.stem, context=_context(setting, as_of))
    if rules:
        try:
            from opencac.edits import apply_rules
        except ImportError:
            apply_rules = None  # type: ignore[assignment]
        if apply_rules is not None:
            apply_rules(res, text)
    d = route(claim_result(res), pol, text)
    if as_json:
        _echo_json(d.to_dict())
        return
    typer.echo(f"{note.name}: {d.route} (priority {d.priority}, complexity {d.complexity:.2f})"
               + ("  [sampled for audit]" if d.audit_sample else ""))
    for r in d.reasons:
        typer.echo(f"  - {r}")
    top = sorted(d.factors.items(), key=lambda kv: -kv[1]["contribution"])
    typer.echo("  factors: " + ", ".join(f"{k}={v['value']:g} (+{v['contribution']:.2f})" for k, v in top
                                         if v["value"]))
