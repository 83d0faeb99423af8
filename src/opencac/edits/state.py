"""The working state a rule sees: context, note, knowledge base and the code set being built."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from opencac.codesets.types import fiscal_year
from opencac.coding.types import CodeSuggestion, EncounterContext
from opencac.edits.model import Edit, EvidenceSpan, FinalCode, Query
from opencac.edits.policy import DEFAULT_POLICY, AutoApplyPolicy


def undot(code: str) -> str:
    """``'E11.9'`` -> ``'E119'``."""
    return code.replace(".", "").strip().upper()


@dataclass
class RulesState:
    """Mutable state passed to every rule.

    Attributes:
        ctx: the encounter context.
        text: the note ("" for a bare claim).
        kb: the knowledge base (agreed ``KnowledgeBase`` API).
        mode: ``engine`` (fixes are applied) or ``claim`` (fixes only proposed).
        dx / px: the working diagnosis / procedure codes, in sequence.
        candidates: every engine suggestion (selected or not), to draw companion codes from.
        removed: codes taken out by a rule, with the rule name (audit trail).
        changes: every applied change in order: ``{"rule", "op": add|remove|replace, "code",
            "new" (replace), "anchor" (add)}``.
        queries: drafted physician queries.
        scratch: free space for rules to share facts (e.g. ``"uncertain_outpatient"``).
        policy: when a rule's fix is certain enough to apply by itself (engine mode).
        learned: the confidences come from a model trained on coded documents (the result's
            ``model`` is not ``dictionary-only``): they carry that organisation's coding practice.
        drg_crosscheck: also group the claim with the second grouper (the ``drg`` package) and
            report whether it agrees (``DrgResult.crosscheck``).
    """

    ctx: EncounterContext
    text: str
    kb: Any
    mode: str = "engine"
    dx: list[FinalCode] = field(default_factory=list)
    px: list[FinalCode] = field(default_factory=list)
    candidates: list[CodeSuggestion] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)
    policy: AutoApplyPolicy = DEFAULT_POLICY
    learned: bool = False
    drg_crosscheck: bool = True
    _lower: str | None = None

    # --- dates --------------------------------------------------------------------------
    @property
    def as_of(self) -> dt.date:
        """The date that selects the code set (discharge date, else date of service, else today)."""
        return self.ctx.effective_date()

    @property
    def fy(self) -> int:
        return fiscal_year(self.as_of)

    @property
    def inpatient(self) -> bool:
        return self.ctx.setting == "inpatient"

    @property
    def lower(self) -> str:
        """The note lower-cased (same offsets as ``text``)."""
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    # --- queries over the code set --------------------------------------------------------
    def codes(self, system: str = "icd10cm") -> list[str]:
        """Current codes of one system, in sequence."""
        return [c.code for c in (self.dx if system == "icd10cm" else self.px)]

    def has(self, code: str) -> bool:
        """Whether ``code`` (any dotting) is in the working set."""
        u = undot(code)
        return any(undot(c.code) == u for c in self.dx + self.px)

    def find(self, code: str) -> FinalCode | None:
        u = undot(code)
        for c in self.dx + self.px:
            if undot(c.code) == u:
                return c
        return None

    def with_prefix(self, *prefixes: str) -> list[FinalCode]:
        """Working diagnoses whose undotted code starts with any prefix (``"E11"``, ``"N18"``)."""
        ps = tuple(undot(p) for p in prefixes)
        return [c for c in self.dx if undot(c.code).startswith(ps)]

    def candidate(self, code: str) -> CodeSuggestion | None:
        u = undot(code)
        for s in self.candidates:
            if undot(s.code) == u:
                return s
        return None

    def is_manifestation(self, code: str) -> bool:
        """A manifestation code (never principal, I.A.13): worded "in (other) diseases classified
        elsewhere" at the code or its (sub)category. ``Code.manifestation`` is not used alone
        because the code set also sets it on codes that merely carry a "code first" note
        (I50, K31.84), which may be principal."""
        c = self.kb.find(code)
        if c is None or c.system.value != "icd10cm":
            return False
        if "classified elsewhere" in c.description.lower():
            return True
        for a in self.kb.ancestors(code)[:3]:
            if a.kind in ("chapter", "block"):
                break
            if "classified elsewhere" in a.description.lower():
                return True
        return False

    def notes(self, code: str) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
        """``kb.inherited_notes`` for a known code, ``{}`` for an unknown one."""
        return self.kb.inherited_notes(code) if self.kb.find(code) is not None else {}

    def describe(self, code: str, system: str | None = None) -> str:
        c = self.kb.find(code, system)
        return c.description if c is not None else ""

    # --- note text helpers ---------------------------------------------------------------
    def span(self, start: int, end: int) -> EvidenceSpan:
        return EvidenceSpan(start, end, self.text[start:end])

    def search(self, pattern: str | re.Pattern[str], limit: int = 20) -> list[EvidenceSpan]:
        """Case-insensitive regex matches in the note, as spans, skipping negated ones."""
        rx = re.compile(pattern, re.I) if isinstance(pattern, str) else pattern
        out = []
        for m in rx.finditer(self.text):
            if self.negated(m.start()):
                continue
            out.append(EvidenceSpan(m.start(), m.end(), m.group(0)))
            if len(out) >= limit:
                break
        return out

    def mentions(self, pattern: str | re.Pattern[str]) -> bool:
        return bool(self.search(pattern, limit=1))

    def negated(self, pos: int) -> bool:
        """Crude NegEx: a negation cue earlier in the same clause, within ~40 characters."""
        lo = max(0, pos - 40)
        window = self.lower[lo:pos]
        cut = max(window.rfind("."), window.rfind(";"), window.rfind("\n"), window.rfind(" but "))
        if cut >= 0:
            window = window[cut + 1:]
        return bool(re.search(r"\b(no|not|denies|denied|without|negative for|free of|ruled out|r/o)\b", window))

    def sentence_around(self, start: int, end: int) -> tuple[int, int]:
        """Offsets of the sentence (or line) holding ``start..end``."""
        lo = max(self.text.rfind(".", 0, start), self.text.rfind("\n", 0, start)) + 1
        hi_candidates = [i for i in (self.text.find(".", end), self.text.find("\n", end)) if i >= 0]
        hi = min(hi_candidates) if hi_candidates else len(self.text)
        return lo, hi

    def window_for(self, fc: FinalCode, pad: int = 0) -> str:
        """Lower-cased text of the sentences holding the code's evidence ('' without evidence)."""
        parts = []
        for ev in fc.evidence:
            lo, hi = self.sentence_around(ev.start, ev.end)
            parts.append(self.lower[max(0, lo - pad):min(len(self.text), hi + pad)])
        return " ".join(parts)

    # --- changes ------------------------------------------------------------------------
    def make_code(self, code: str, *, system: str | None = None, source: str = "rule",
                  evidence: list[EvidenceSpan] | None = None, added_by: str | None = None,
                  confidence: float | None = None) -> FinalCode:
        known = self.kb.find(code, system) is not None
        norm = self.kb.normalize(code, system) if known else code
        if system is not None:
            sysname = system
        elif known:
            sysname = str(getattr(self.kb.system_of(norm), "value", self.kb.system_of(norm)))
        else:
            sysname = "icd10pcs" if len(undot(code)) == 7 and "." not in code and not re.match(r"^[A-Z]\d[0-9A-Z]\d", code) else "icd10cm"
        return FinalCode(code=norm, system=sysname, description=self.describe(norm, sysname), source=source,
                         evidence=list(evidence or []), added_by=added_by, confidence=confidence,
                         poa=self.ctx.poa.get(norm) or self.ctx.poa.get(undot(norm)) if sysname == "icd10cm" else None)

    def apply_fix(self, fix: dict[str, Any], rule_name: str) -> bool:
        """Apply a proposed fix to the working set; returns whether anything changed.

        Keys: ``remove`` (codes), ``replace`` ({old: new}), ``add`` (codes or
        ``{"code", "after"|"before", "evidence"}`` dicts), ``sequence`` (diagnosis codes in the
        wanted order; codes not listed keep their relative order after them).
        """
        changed = False
        for old, new in (fix.get("replace") or {}).items():
            cur = self.find(old)
            if cur is None:
                continue
            self.changes.append({"rule": rule_name, "op": "replace", "code": cur.code, "new": new})
            if self.has(new):  # replacement already present: just drop the old one
                self._drop(cur, rule_name, log=False)
            else:
                repl = self.make_code(new, system=cur.system, evidence=cur.evidence, added_by=rule_name,
                                      confidence=cur.confidence)
                repl.source = cur.source
                repl.role = cur.role
                lst = self.dx if cur.system == "icd10cm" else self.px
                lst[lst.index(cur)] = repl
                self.removed.append((cur.code, rule_name))
            changed = True
        for code in fix.get("remove") or []:
            cur = self.find(code)
            if cur is not None:
                self._drop(cur, rule_name)
                changed = True
        for item in fix.get("add") or []:
            spec = {"code": item} if isinstance(item, str) else dict(item)
            if self.has(spec["code"]):
                continue
            ev = spec.get("evidence") or []
            ev = [e if isinstance(e, EvidenceSpan) else EvidenceSpan(**e) for e in ev]
            fc = self.make_code(spec["code"], evidence=ev, added_by=rule_name,
                                confidence=spec.get("confidence"))
            lst = self.dx if fc.system == "icd10cm" else self.px
            anchor = self.find(spec.get("after") or spec.get("before") or "")
            self.changes.append({"rule": rule_name, "op": "add", "code": fc.code,
                                 "anchor": anchor.code if anchor is not None else None})
            if anchor is not None and anchor in lst:
                i = lst.index(anchor) + (1 if spec.get("after") else 0)
                lst.insert(i, fc)
            else:
                lst.append(fc)
            changed = True
        dup = fix.get("remove_dup")
        if dup:
            for lst in (self.dx, self.px):
                hits = [c for c in lst if undot(c.code) == undot(dup)]
                for extra in hits[1:]:
                    lst.remove(extra)
                    self.removed.append((extra.code, rule_name))
                    self.changes.append({"rule": rule_name, "op": "remove_duplicate", "code": extra.code})
                    changed = True
        seq = fix.get("sequence")
        if seq:
            order = {undot(c): i for i, c in enumerate(seq)}
            before = [c.code for c in self.dx]
            self.dx.sort(key=lambda c: order.get(undot(c.code), len(order)))
            changed = changed or before != [c.code for c in self.dx]
        return changed

    def _drop(self, fc: FinalCode, rule_name: str, log: bool = True) -> None:
        lst = self.dx if fc.system == "icd10cm" else self.px
        if fc in lst:
            lst.remove(fc)
        self.removed.append((fc.code, rule_name))
        if log:
            self.changes.append({"rule": rule_name, "op": "remove", "code": fc.code})

    def flag(self, *args: Any, **kwargs: Any) -> Edit:
        """Shorthand for ``Edit(...)`` (rules return edits; the runner records them)."""
        return Edit(*args, **kwargs)
