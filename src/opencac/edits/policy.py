"""When a rule may change the engine's code set by itself: the auto-apply policy.

In engine mode a rule *applies* its fix only when the decision is certain from the
documentation and the codes; otherwise it leaves the codes as the engine proposed them and
raises a warning (or error) edit carrying the *proposed* fix (``Edit.fix``, ``applied``
False), which the coder accepts or rejects in the workbench. Routing counts such open edits,
so the encounter goes to a coder and the guideline is still enforced before billing
("resolve by evidence and confidence, or flag for the coder").

Every threshold of "confident" lives here, with its documented default; rules read them from
``RulesState.policy`` and never hard-code their own.

Two principles hold for every rule that takes a code out or swaps it:

- the engine's own scores must not contradict the change (``engine_agrees``): the engine
  believes the code put in (or kept) at least as much as the code taken out. A code the
  engine scored 0.96 is not silently replaced by one it scored 0.07, whatever the rule
  infers; the coder decides. A code the engine did not score is judged by the note alone.
- a rule that *judges* a code redundant or conflicting (Excludes1 by confidence, an integral
  symptom, an unspecified code beside a specific one, a more specific sibling read from the
  note) drops an engine code by itself only when the engine itself doubts it (``may_drop``:
  confidence <= ``doubtful``). Confidences are calibrated probabilities that the code belongs
  on the encounter, so a code scored p is right about p of the time: dropping codes scored
  0.4-0.9 automatically would remove a right code 40-90 % of the time. Such codes stay and
  the conflict goes to the coder with the proposed fix. The same holds for a diagnosis the
  note hedges (IV.H, outpatient). Documentation that rules a code out (negated, family
  history, hypothetical, a history stated as over) and structural completions (a 7th
  character the note states, a header beside its own subcode) are not judgements and apply.

Per rule (see ``opencac.edits.guidelines``):

- completion (I.A.5, I.C.19.a, I.B.1): a 7th character is added only when the note states the
  episode of care explicitly (or the encounter is an emergency-department one); an assumed
  episode or a header completed to its unspecified subcode is proposed. A header beside its
  own coded subcode is dropped (unless the engine prefers the header).
- specificity (I.B.13, III.B, I.C.14.a): the more specific sibling replaces the unspecified
  code only when the attribute (side, acuity, type) is in the words of the mention itself
  (``attribute_window``) and the unspecified code is doubtful or was added by a rule; a CKD
  stage stated in the note replaces N18.9. Otherwise proposed.
- combination codes (I.A.15, I.C.4.a, I.C.9.a): built only when the codes they combine are
  confidently coded (``confident``) or the CKD stage is stated, and - with a trained engine -
  the link is stated in the note's words or the engine scored the combination code itself
  (``presumption_backed``); the documented diabetes type moves codes of another type (E08-E13
  exclude one another). Otherwise proposed.
- integral symptoms (I.B.5): the symptom is dropped only when the diagnosis that absorbs it is
  confidently coded and the symptom doubtful; otherwise its removal is proposed.
- Excludes1 (I.A.12.a): one side dropped only when it is negated, has no evidence against a
  supported code, or is far less confident (``confidence_gap``) than a confidently coded other
  side and doubtful itself; otherwise both stay and the edit proposes dropping the weaker one.
- unspecified beside specific (I.A.9.b, I.B.2): dropped only when its words lie inside the
  specific code's longer reading of the same mention and it is doubtful; otherwise proposed.
  A code titled "without complications" / "uncomplicated" beside a code of its subdivision that
  reports a complication (E11.9 and E11.65) is contradicted by the titles themselves, not
  judged: dropped unless the engine believes it more than the complication code.
- the same words read twice (I.B.2): a code whose every mention lies inside a longer mention that
  another code of another category reads in full (K37 inside K35.80) is dropped when doubtful,
  else proposed; companions the tabular notes ask for stay.
- acute on chronic (I.B.8, I.B.9): the combination code's acute and chronic codes beside it are
  dropped when doubtful; the combination for an acute and a chronic code of one condition is
  always proposed (the two mentions may be different episodes).
- personal history (I.C.21.c.4): the active code becomes the Z85-Z87 history code only when
  the note states the condition is over (``_RESOLVED`` cues in the mention's sentence);
  otherwise proposed. Family history and negated / hypothetical mentions are never coded as
  active conditions, so those changes always apply.
- companions (code first / use additional / code also) found among the engine's candidates or
  in the note are always added: they complete, never contradict, the engine's codes.
- uncertain diagnoses outside the inpatient setting (IV.H): replaced by their symptoms only when
  the engine doubts the code too; a code the engine believes despite the hedge words may be
  established elsewhere in the record, so the switch is proposed.
- always applied, the note or the codes deciding: duplicates (I.B.12), malformed PCS codes,
  and sequencing.

A code whose confidence is unknown (``None``: added by a rule from the note's own words, or a
claim) counts as confident.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opencac.edits.model import Edit


@dataclass(frozen=True, slots=True)
class AutoApplyPolicy:
    """Thresholds that decide whether a rule's fix is applied or only proposed (engine mode).

    Attributes:
        confident: engine confidence (calibrated probability) at or above which a code counts
            as confidently coded, e.g. the diagnosis that absorbs an integral symptom, the
            heart/CKD condition of a hypertensive combination. Default 0.7.
        confidence_gap: confidence gap at or above which the weaker code of an Excludes1 pair is
            "far less confident" and dropped (the stronger one must be confident). Default 0.3.
        attribute_window: characters either side of the mention's words in which a documented
            side / acuity / type makes the more specific code certain. Default 30.
        candidate_min: lowest confidence of an unselected engine suggestion a rule may draw a
            code from (companion code, symptom instead of an uncertain diagnosis, a header's
            subcode). Default 0.2.
        history_candidate_min: lowest confidence of an unselected history / family-history
            mention that earns its Z80-Z87 code. Default 0.5.
        doubtful: engine confidence at or below which the engine itself doubts a code, so that a
            rule judging it redundant or conflicting may drop it without the coder. Default 0.2
            (with calibrated confidences: at least ~80 % of such automatic drops are right).
    """

    confident: float = 0.7
    confidence_gap: float = 0.3
    attribute_window: int = 30
    candidate_min: float = 0.2
    history_candidate_min: float = 0.5
    doubtful: float = 0.2

    def is_confident(self, confidence: float | None) -> bool:
        """Whether a code with this confidence counts as confidently coded (None counts)."""
        return confidence is None or confidence >= self.confident

    def engine_agrees(self, removed: float | None, kept: float | None) -> bool:
        """Whether the engine's scores allow taking out a code scored ``removed`` for one scored
        ``kept`` (the code put in, or the code that absorbs / outranks it): the engine believes
        ``kept`` at least as much. An unscored code (None) leaves the decision to the note."""
        return removed is None or kept is None or kept >= removed

    def may_drop(self, confidence: float | None) -> bool:
        """Whether a rule that judges a code redundant or conflicting may drop it by itself: the
        engine doubts it (confidence <= ``doubtful``) or did not score it (added by a rule)."""
        return confidence is None or confidence <= self.doubtful + 1e-9

    def presumption_backed(self, learned: bool, linked: bool, target_confidence: float | None) -> bool:
        """Whether a combination code that rests on a *presumed* link (the "with" convention,
        I.A.15; hypertension with heart disease / CKD, I.C.9.a) may replace the engine's separate
        codes by itself. Always with the dictionary-only engine (no practice to contradict);
        with a trained engine only when the note states the link in words (``linked``) or the
        engine itself scored the combination code (>= ``candidate_min``): a trained engine
        carries the organisation's coded practice, and one that confidently codes the separate
        codes without ever scoring the combination says its coders report them differently, so
        the change goes to a coder with the guideline citation instead of silently overriding
        both."""
        if not learned or linked:
            return True
        return target_confidence is not None and target_confidence >= self.candidate_min - 1e-9

    def far_less(self, weaker: float, stronger: float) -> bool:
        """``weaker`` is far less confident than a confidently coded ``stronger``."""
        return stronger - weaker >= self.confidence_gap - 1e-9 and self.is_confident(stronger)

    def to_dict(self) -> dict[str, Any]:
        return {"confident": self.confident, "confidence_gap": self.confidence_gap,
                "attribute_window": self.attribute_window, "candidate_min": self.candidate_min,
                "history_candidate_min": self.history_candidate_min, "doubtful": self.doubtful}


#: The defaults used when ``apply_rules`` is given no policy.
DEFAULT_POLICY = AutoApplyPolicy()


def decide(edit: Edit, auto: bool, why: str = "", *, escalate: bool = True) -> Edit:
    """Mark whether ``edit``'s fix may be applied automatically (engine mode).

    A fix that is only proposed makes the edit at least a warning (an open warning sends the
    encounter to a coder; ``escalate=False`` keeps an optional addition informational) and
    its message says why the change was not made.
    """
    edit.auto = auto
    if not auto and edit.fix:
        if edit.severity == "info" and escalate:
            edit.severity = "warning"
        if why:
            edit.message = f"{edit.message.rstrip('.')}. Proposed, not applied: {why}."
    return edit


def conf_text(confidence: float | None) -> str:
    """A confidence for a message ('0.42', or 'unknown')."""
    return "unknown" if confidence is None else f"{confidence:.2f}"
