"""Model cards organised like the ONC HTI-1 source attributes for predictive DSIs.

The ONC HTI-1 final rule (89 FR 1192, 9 Jan 2024; 45 CFR 170.315(b)(11)(iv)(A)) lists the
source attributes a developer of a predictive decision support intervention must make
available. This module groups them the same way:

1. Details and output of the intervention
2. Purpose of the intervention (intended use, patient population, users, decision role)
3. Cautioned out-of-scope use (tasks, settings, known risks and limitations)
4. Intervention development details and input features (training data, demographics)
5. Process used to ensure fairness in development
6. External validation process
7. Quantitative measures of performance (validity and fairness)
8. Ongoing maintenance (update, monitoring and fairness-assessment schedule)

A card is fed from the model manifest (``manifest.json`` in the model directory, as the
engine and the learning registry write it), an optional ``model_card.json`` beside it with
the narrative fields, audit metrics and a :class:`~opencac.audit.fairness.FairnessReport`.
An attribute nobody supplied is shown as "Not provided", never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opencac.audit.fairness import ATTRIBUTE_LABELS, OUTCOMES, TOO_FEW, FairnessReport
from opencac.errors import AuditInputError, AuditReportError

NOT_PROVIDED = "Not provided"

#: Defaults describing OpenCAC itself; a model's ``model_card.json`` overrides any of them.
DEFAULT_NARRATIVE: dict[str, str] = {
    "developer": "OpenCAC project (open source, Apache-2.0)",
    "funding": NOT_PROVIDED,
    "output_description": "Ranked ICD-10-CM diagnosis and ICD-10-PCS procedure code suggestions for one "
                          "encounter, each with a calibrated confidence and the note evidence supporting it.",
    "output_type": "Recommendation (code suggestions) with a probability-like confidence",
    "intended_use": "Assist professional medical coders by suggesting codes from clinical documentation; "
                    "high-confidence encounters may be routed straight through under a policy the "
                    "organisation sets and audits.",
    "intended_population": "Adult and paediatric inpatient and outpatient encounters documented in English "
                           "(or the language of the training corpus).",
    "intended_users": "Credentialed medical coders, coding auditors, CDI specialists and HIM leaders.",
    "decision_role": "Augments coding: a coder reviews suggestions unless the organisation's routing policy "
                     "allows straight-through finalisation, which is then audited.",
    "out_of_scope": "Clinical diagnosis or treatment decisions; coding without documentation; code systems or "
                    "fiscal years the model was not built for; note languages absent from training data.",
    "known_risks": "Missing or over-specific codes when documentation is ambiguous; degraded accuracy on "
                   "note styles, specialties or languages under-represented in training; confidence that "
                   "is miscalibrated on local data until recalibrated.",
    "inclusion_exclusion": NOT_PROVIDED,
    "input_features": "Note text only. Race, ethnicity, language, sex, date of birth, sexual orientation, "
                      "gender identity, social determinants and health status assessments are not used as "
                      "input features (they are used only to audit fairness).",
    "data_relevance": NOT_PROVIDED,
    "fairness_process": "Accuracy, automation rate and query rate are compared across age band, sex, race, "
                        "ethnicity, preferred language and payer with Wilson intervals, chi-square or Fisher "
                        "exact tests and Holm adjustment; gaps above a set threshold raise an alert; groups "
                        "too small to judge are listed as such.",
    "bias_mitigation": "Demographics are excluded from the model inputs; straight-through thresholds are set "
                       "per policy and monitored by group; alerts trigger review before promotion.",
    "external_validation": NOT_PROVIDED,
    "outcome_evidence": NOT_PROVIDED,
    "update_schedule": "Retrained or recalibrated when code sets change each fiscal year (1 October) and when "
                       "monitoring shows drift; every new version is compared with production on a fixed "
                       "validation set before promotion.",
    "monitoring_schedule": "Quarterly coding-quality audit of a random sample, with the fairness report, "
                           "plus continuous tracking of override rates by model version.",
}


@dataclass(frozen=True)
class CardAttribute:
    """One source attribute: label, text and where it came from."""

    label: str
    value: str
    source: str = "developer"


@dataclass
class ModelCard:
    """A model card: sections of attributes plus performance tables."""

    name: str
    version: str
    generated_at: str
    sections: list[tuple[str, list[CardAttribute]]]
    performance: list[tuple[str, str]] = field(default_factory=list)
    demographics: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    fairness_rows: list[dict[str, Any]] = field(default_factory=list)
    fairness_alerts: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        """The card as Markdown."""
        out = [f"# Model card: {self.name} ({self.version})", "",
               f"_Organised like the ONC HTI-1 source attributes for predictive decision support "
               f"interventions (45 CFR 170.315(b)(11)(iv)). Generated {self.generated_at}._", ""]
        for title, attrs in self.sections:
            out += [f"## {title}", ""]
            for a in attrs:
                out.append(f"- **{a.label}:** {a.value}")
            out.append("")
            if title.startswith("4.") and self.demographics:
                out += ["### Demographics of the training data", ""]
                for attr, rows in self.demographics:
                    out.append(f"- {attr}: " + "; ".join(f"{g} {v}" for g, v in rows))
                out.append("")
            if title.startswith("7."):
                if self.performance:
                    out += ["| Measure | Value |", "|---|---|"]
                    out += [f"| {k} | {v} |" for k, v in self.performance]
                    out.append("")
                if self.fairness_rows:
                    out += ["### Performance by group", "",
                            "| Attribute | Group | Outcome | n | Rate (95% CI) | Difference | Status |",
                            "|---|---|---|---|---|---|---|"]
                    out += [f"| {r['attribute']} | {r['group']} | {r['outcome']} | {r['n']} | {r['rate']} | "
                            f"{r['difference']} | {r['status']} |" for r in self.fairness_rows]
                    out.append("")
                if self.fairness_alerts:
                    out += ["**Fairness alerts:** " + "; ".join(self.fairness_alerts), ""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        """The card as a standalone HTML page (template ``audit_model_card.html``).

        Raises:
            AuditReportError: Template missing or failing.
        """
        import jinja2

        from opencac.audit.report import TEMPLATE_DIR

        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                                 autoescape=jinja2.select_autoescape(["html"]))
        try:
            return env.get_template("audit_model_card.html").render(card=self, not_provided=NOT_PROVIDED)
        except jinja2.TemplateError as exc:
            raise AuditReportError(f"model card template failed: {exc}") from exc

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``model_card.md`` and ``model_card.html`` into ``out_dir``."""
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        md, html = d / "model_card.md", d / "model_card.html"
        md.write_text(self.to_markdown(), encoding="utf-8")
        html.write_text(self.to_html(), encoding="utf-8")
        return {"markdown": md, "html": html}


def _get(d: Mapping[str, Any], *path: str) -> Any:
    cur: Any = d
    for p in path:
        if not isinstance(cur, Mapping) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _first(d: Mapping[str, Any], *paths: tuple[str, ...]) -> Any:
    for p in paths:
        v = _get(d, *p)
        if v not in (None, "", {}, []):
            return v
    return None


def _fmt_metric(k: str, v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def build_model_card(
    manifest: Mapping[str, Any],
    narrative: Mapping[str, str] | None = None,
    fairness: FairnessReport | None = None,
    audit_metrics: Mapping[str, Any] | None = None,
    local_fairness: FairnessReport | None = None,
) -> ModelCard:
    """Assemble a model card.

    Args:
        manifest: The model manifest (name/version, config, code-set versions, training
            data hash and size, metrics, optional ``training_demographics`` mapping
            attribute -> {group: count}).
        narrative: Overrides of :data:`DEFAULT_NARRATIVE` (e.g. from ``model_card.json``).
        fairness: Fairness on test data from the training source.
        audit_metrics: Measures from local audits (name -> value) for "validity in local data".
        local_fairness: Fairness on local (deployed) data from audits.

    Raises:
        AuditInputError: ``manifest`` is not a mapping.
    """
    if not isinstance(manifest, Mapping):
        raise AuditInputError("a model manifest must be a JSON object")
    text = {**DEFAULT_NARRATIVE, **(_get(manifest, "model_card") or {}), **(narrative or {})}
    name = str(_first(manifest, ("name",), ("model_name",), ("engine",)) or "OpenCAC coding model")
    version = str(_first(manifest, ("version",), ("model_version",), ("learning", "version"),
                         ("created",)) or "unversioned")
    codesets = _first(manifest, ("codeset_versions",), ("codesets",), ("codeset",))
    cs_text = (", ".join(f"{k} {v if not isinstance(v, Mapping) else v.get('version', v)}"
                         for k, v in codesets.items()) if isinstance(codesets, Mapping) else
               (str(codesets) if codesets else NOT_PROVIDED))
    train = _first(manifest, ("training_data",), ("training",), ("corpus",)) or {}
    if not isinstance(train, Mapping):
        train = {"description": str(train)}
    train_hash = _first(manifest, ("training_data_hash",), ("training_data", "hash"), ("corpus", "hash"),
                        ("data_hash",))
    n_docs = _first(manifest, ("n_documents",), ("training_data", "n_documents"), ("training", "n_docs"),
                    ("corpus", "n_documents"), ("n_train",))
    train_desc = train.get("description") or train.get("name") or NOT_PROVIDED
    train_parts = [str(train_desc)]
    if n_docs:
        train_parts.append(f"{n_docs} documents")
    if train_hash:
        train_parts.append(f"data fingerprint {str(train_hash)[:16]}")
    created = _first(manifest, ("created",), ("trained_at",))

    def attr(label: str, key: str) -> CardAttribute:
        v = text.get(key) or NOT_PROVIDED
        return CardAttribute(label, v, "default" if key in DEFAULT_NARRATIVE and v == DEFAULT_NARRATIVE[key] else "model")

    sections: list[tuple[str, list[CardAttribute]]] = [
        ("1. Details and output of the intervention", [
            CardAttribute("Name and version", f"{name} ({version})", "manifest"),
            attr("Developer and contact", "developer"),
            attr("Funding source of the technical implementation", "funding"),
            attr("Output", "output_description"),
            attr("Type of output", "output_type"),
            CardAttribute("Code sets", cs_text, "manifest"),
            CardAttribute("Built", str(created) if created else NOT_PROVIDED, "manifest"),
        ]),
        ("2. Purpose of the intervention", [
            attr("Intended use", "intended_use"), attr("Intended patient population", "intended_population"),
            attr("Intended users", "intended_users"), attr("Intended decision-making role", "decision_role"),
        ]),
        ("3. Cautioned out-of-scope use", [
            attr("Tasks, situations and populations to avoid", "out_of_scope"),
            attr("Known risks, inappropriate settings and limitations", "known_risks"),
        ]),
        ("4. Intervention development details and input features", [
            CardAttribute("Training data", "; ".join(train_parts), "manifest"),
            attr("Inclusion and exclusion criteria", "inclusion_exclusion"),
            attr("Use of demographic and social variables as input features", "input_features"),
            attr("Relevance of the training data to the deployed setting", "data_relevance"),
        ]),
        ("5. Process used to ensure fairness in development", [
            attr("Approach to fair output", "fairness_process"),
            attr("Approach to manage, reduce or eliminate bias", "bias_mitigation"),
        ]),
        ("6. External validation process", [attr("External validation", "external_validation")]),
        ("7. Quantitative measures of performance", [
            attr("Evidence of effect on outcomes", "outcome_evidence"),
        ]),
        ("8. Ongoing maintenance of implementation and use", [
            attr("Update and continued validation schedule", "update_schedule"),
            attr("Monitoring and fairness assessment schedule", "monitoring_schedule"),
        ]),
    ]
    performance: list[tuple[str, str]] = []
    metrics = _first(manifest, ("metrics",), ("validation", "metrics")) or {}
    if isinstance(metrics, Mapping):
        performance += [(f"Test data: {k}", _fmt_metric(k, v)) for k, v in metrics.items()
                        if isinstance(v, (int, float, str))]
    for k, v in (audit_metrics or {}).items():
        performance.append((f"Local audit: {k}", _fmt_metric(k, v)))
    if not performance:
        performance.append(("Validity in test data", NOT_PROVIDED))

    demographics: list[tuple[str, list[tuple[str, str]]]] = []
    demo = _first(manifest, ("training_demographics",), ("training_data", "demographics"))
    if isinstance(demo, Mapping):
        for a, groups in demo.items():
            if isinstance(groups, Mapping) and groups:
                total = sum(float(c) for c in groups.values()) or 1.0
                demographics.append((ATTRIBUTE_LABELS.get(a, a),
                                     [(str(g), f"{float(c) / total:.0%}") for g, c in groups.items()]))
    if not demographics:
        sections[3][1].append(CardAttribute(
            "Demographic representativeness", "Not recorded in the training data (the training corpus carries "
            "no patient demographics); assess on local data with the fairness report.", "manifest"))

    rows: list[dict[str, Any]] = []
    alerts: list[str] = []
    for label, fr in (("test data", fairness), ("local data", local_fairness)):
        if fr is None:
            continue
        for t in fr.tables:
            for g in t.groups:
                rows.append({
                    "data": label, "attribute": ATTRIBUTE_LABELS.get(t.attribute, t.attribute), "group": g.group,
                    "outcome": OUTCOMES[t.outcome][0], "n": g.n,
                    "rate": "n/a" if g.rate is None else f"{g.rate:.1%} ({(g.low or 0):.1%}-{(g.high or 0):.1%})",
                    "difference": "" if g.difference is None else f"{g.difference * 100:+.1f} pts",
                    "status": g.status})
        alerts += [f"{OUTCOMES[t.outcome][0]} for {ATTRIBUTE_LABELS.get(t.attribute, t.attribute)} = {g.group} "
                   f"({label})" for t, g in fr.alerts]
        sections[6][1].append(CardAttribute(
            f"Fairness in {label}", f"{len(fr.alerts)} alert(s) at a {fr.threshold:.0%} gap threshold; "
            f"groups under {fr.min_group_size} encounters marked '{TOO_FEW}'.", "fairness report"))
    if fairness is None and local_fairness is None:
        sections[6][1].append(CardAttribute("Fairness of the intervention", NOT_PROVIDED, "fairness report"))
    return ModelCard(name, version, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), sections,
                     performance, demographics, rows, alerts)


def load_model_card_inputs(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Read ``manifest.json`` (merged with ``learning/manifest.json``) and the optional
    ``model_card.json`` narrative from a model directory.

    Raises:
        AuditInputError: Not a directory, no manifest, or invalid JSON.
    """
    from opencac.learning.registry import read_manifest

    d = Path(model_dir)
    if not d.is_dir():
        raise AuditInputError(f"model directory {d} does not exist or is not a directory")
    if not (d / "manifest.json").is_file():
        raise AuditInputError(f"{d} has no manifest.json: is it a saved OpenCAC model?")
    manifest = read_manifest(d)
    narrative: dict[str, str] = {}
    card = d / "model_card.json"
    if card.is_file():
        try:
            narrative = {str(k): str(v) for k, v in json.loads(card.read_text(encoding="utf-8")).items()}
        except (json.JSONDecodeError, AttributeError) as exc:
            raise AuditInputError(f"{card} is not a JSON object of text fields") from exc
    return manifest, narrative
