"""Assertion of a mention: negated, uncertain, historical, family, hypothetical or affirmed.

A ConText-style algorithm of our own (after Harkema et al., "ConText: an algorithm for
determining negation, experiencer, and temporal status from clinical reports", J Biomed
Inform 2009), without medspaCy (which pins numpy<2):

* triggers are phrases with a category and a direction: ``pre`` (applies to what follows),
  ``post`` (to what precedes) or ``both``; each has a window in words;
* a trigger's scope is the rest of its sentence in its direction, cut at a termination term
  (``but``, ``however``, ``which``, ``due to``, ``;``...) and, as in pyConText, at the nearest
  trigger of another category (except ``family``, which is about *whose* condition it is and
  is never cut by, nor cuts, a temporal or certainty trigger);
* exceptions to that cut: a conditional (``if``, ``in case of``) is not cut by an uncertainty
  trigger nor by a change of subject (``if the patient ...``); a negation is not cut by a
  relational uncertainty trigger (``no lesions suggestive of X``: X is negated); a few terms
  (``diagnosed with``, ``underwent``) end every scope except ``family``;
* short-range triggers (``previous``, ``prior``, ``old``: window <= 4 words) stop at a comma;
* pseudo-triggers (``no change``, ``gram negative``, ``year-old``, ``3-day history of``,
  ``history of interest``...) are matched and ignored;
* when several categories apply, priority decides: negated > family > hypothetical >
  uncertain > historical;
* with no trigger, the section decides: ``family_history`` -> family, ``past_history`` ->
  historical.

Decision on "compatible with" / "consistent with" / "suggestive of": they are *uncertain*
(trigger kept), because the ICD-10-CM Official Guidelines list "compatible with" and
"consistent with" among the terms of uncertainty (Section II.H inpatient; Section IV.H
outpatient: do not code as confirmed). The engine sees the trigger and may still code them
as established for inpatient encounters (II.H) - CodiEsp's annotators code them.

"it was decided to ..." (case reports' "se decidió") is *affirmed*: in case reports the
decided procedure is, almost always, then performed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from opencac.text.document import Document, Span

__all__ = ["ASSERTIONS", "PRIORITY", "Trigger", "assert_span", "find_triggers"]

#: Assertion values (same values as ``opencac.coding.types.ASSERTIONS``).
ASSERTIONS = ("affirmed", "negated", "uncertain", "historical", "family", "hypothetical")
#: Which category wins when several apply (first wins).
PRIORITY = ("negated", "family", "hypothetical", "uncertain", "historical")

# (pattern, category, direction, window in words). Patterns are regex fragments, lower case;
# a space stands for any run of white space.
_LEXICON: list[tuple[str, str, str, int]] = [
    # --- pseudo-triggers: look like triggers, are not ---------------------------------------
    *[(p, "pseudo", "pre", 0) for p in (
        r"no changes?", r"no significant changes?", r"no interval changes?", r"without changes?", r"no increase", r"no further",
        r"not only", r"not necessarily", r"not drain", r"gram[- ]negative", r"gram[- ]positive",
        r"without difficulty", r"without delay", r"no longer than", r"history of (?:the )?present illness",
        r"history and physical", r"(?:year|month|week|day)s?[- ]old",
        r"(?:\d+|an?|one|two|three|four|five|six|several|few|many)[- ](?:hours?|days?|weeks?|months?|years?)[- ]"
        r"(?:history|evolution|course) of", r"not been able to", r"no other",
        r"whether or not", r"not certain whether", r"negative pressure", r"negative predictive",
        r"possible to", r"if necessary", r"if needed", r"as needed", r"if required", r"even if",
        r"family physician", r"family doctor", r"(?:history|antecedents|background) of interest",
        r"(?:no |with no |without )?(?:(?:personal|family|medical|pathological|relevant|other|or|and)[ ,]+)*"
        r"(?:history|antecedents|background) of interest",
        r"(?:presenting|presented|presents|consulted for|complaining of|complained of|reported) (?:with )?"
        r"an? (?:\w+ )?history of",
        r"(?:presenting|presented|presents|came|comes|admitted) to (?:the |our )?(?:\w+ ){0,3}with an? "
        r"(?:\w+[- ])?history of",
        r"(?:uncertain|unclear|unknown|undetermined) (?:origin|cause|etiology|aetiology|significance|nature) of", r"family members? (?:were|was) informed", r"prior to",
        r"previous to", r"with the exception", r"no one", r"mother tongue", r"should be noted",
        r"it should be", r"previously healthy", r"previously asymptomatic",
    )],
    # --- negated --------------------------------------------------------------------------
    *[(p, "negated", "pre", 8) for p in (
        r"no", r"not", r"without", r"denies", r"denied", r"deny", r"denying", r"negative for",
        r"free of", r"absence of", r"absent", r"no evidence of", r"no signs? of", r"no symptoms of",
        r"never", r"none", r"neither", r"nor", r"lack of", r"lacks", r"ruled out", r"rules out",
        r"ruling out", r"discarding",  # a finding or test that excluded it ("..., ruling out endocarditis")
        r"did not (?:show|reveal|present|have|develop|demonstrate|find)",
        r"does not (?:show|reveal|present|have|demonstrate)", r"do not (?:show|have)",
        r"(?:fails|failed) to (?:reveal|show|demonstrate)", r"showed no", r"shows no", r"revealed no",
        r"reveals no", r"with no", r"no longer", r"not have", r"no known", r"unremarkable for",
        r"(?:did|does|do|had|has|have|was|were) not (?:present|presented|develop|developed|experience|experienced|show|shown)",
        r"did not (?:report|refer|mention|complain of|notice)",
        r"negative (?:serology|serologies|culture|cultures|test|tests|results?|pcr|study|studies|smear|screening) (?:for|of)",
        r"(?:with )?no (?:(?:personal|previous|past|prior|known|significant|relevant|medical|other) )*history of",
        r"no previous",
        r"no prior", r"no family history of", r"without (?:a )?history of", r"no suspicion of",
        r"no risk of", r"negative history of", r"denies (?:any )?history of", r"exclusion of",
        r"no recurrence of", r"no data of", r"no data suggestive of", r"there was no", r"there were no",
        r"there is no", r"there are no", r"not suggestive of", r"not compatible with",
        r"not consistent with", r"inconsistent with", r"no findings? (?:suggestive )?of",
        r"no (?:clinical|radiological|analytical) (?:signs|data|evidence) of", r"no presence of",
    )],
    *[(p, "negated", "post", 5) for p in (
        r"(?:was|were|is|are|been) ruled out", r"(?:was|were|is|are|been) excluded", r"excluded",
        r"(?:was|were|is|are)(?: also| all| both| persistently)? negative(?!\s+for)", r"negative(?!\s+for)", r"(?:was|were|is|are) absent", r"not seen",
        r"not found", r"not detected", r"not identified", r"not observed", r"not present", r"not visualized",
        r"not demonstrated", r"not confirmed", r"unlikely", r"(?:was|were|is|are) not (?:seen|found|present|detected|observed)",
        r"(?:was|were|has been|have been) discarded", r"discarded", r"free", r"not evident", r"not noted",
        r"did not occur", r"not appreciated",
        # a test or procedure that was not done ("CT of the abdomen was not required")
        r"(?:was|were|is|are|has been|have been) not (?:required|needed|necessary|performed|done|indicated|"
        r"carried out|undertaken|possible)", r"not (?:required|needed|performed|indicated)",
    )],
    # --- uncertain ------------------------------------------------------------------------
    *[(p, "uncertain", "pre", 6) for p in (
        r"possible", r"possibly", r"probable", r"probably", r"likely", r"most likely", r"suspected",
        r"suspect", r"suspicion of", r"suspicion for", r"suspicious for", r"suspicious of", r"suspicious",
        r"clinical suspicion of", r"rule out", r"r/o", r"to rule out", r"cannot rule out", r"can not rule out",
        r"could not rule out", r"without ruling out", r"not ruling out", r"without discarding",
        r"questionable", r"question of", r"query", r"presumed", r"presumptive",
        r"presumably", r"differential diagnosis(?: with| of| between| includes?)?", r"may be", r"may have",
        r"might be", r"might have", r"could be", r"concern for", r"concerning for", r"worrisome for",
        r"equivocal", r"doubtful", r"uncertain", r"unclear", r"suggestive of", r"suggesting",
        r"suggests", r"compatible with", r"consistent with", r"indicative of",
        r"impression of", r"possibility of", r"diagnostic suspicion", r"in favou?r of", r"appears to be",
        r"seems to be", r"to exclude", r"to discard", r"(?:could|may|might) correspond to",
        r"(?:may|might|could) be (?:due|secondary) to", r"(?:probably|possibly|likely|presumably) (?:due|secondary) to",
    )],
    *[(p, "uncertain", "post", 5) for p in (
        r"(?:is|was|were|are) suspected", r"suspected", r"cannot be (?:ruled out|excluded|discarded)",
        r"could not be (?:ruled out|excluded|discarded)", r"can ?not be (?:ruled out|excluded)",
        r"not (?:ruled out|excluded|discarded)", r"(?:is|was) possible", r"(?:is|was) probable",
        r"(?:is|was) likely", r"to be ruled out", r"to be excluded", r"to be determined",
        r"(?:was|is) considered", r"(?:was|were) suspected", r"questionable", r"probable", r"possible",
        r"likely",
    )],
    *[(p, "uncertain", "both", 4) for p in (r"versus", r"vs\.?", r"or possibly")],
    # --- historical -----------------------------------------------------------------------
    *[(p, "historical", "pre", 10) for p in (
        r"history of", r"h/o", r"hx of", r"past history of", r"personal history of", r"past medical history",
        r"past medical history of", r"past surgical history", r"medical history of", r"a history of",
        r"remote history of", r"known history of", r"antecedents? of", r"background of", r"previous history of",
    )],
    *[(p, "historical", "pre", 25) for p in (r"with (?:a )?(?:personal |past |medical )?history of",)],
    *[(p, "historical", "both", 8) for p in (
        r"(?:\d+|a few|several|many|two|three|four|five|six|seven|eight|nine|ten|some) (?:years|months|weeks|decades) "
        r"(?:before|earlier|previously)",
    )],
    *[(p, "historical", "pre", 6) for p in (r"at the age of \d+", r"at \d+ years of age", r"as a child",
                                            r"had (?:presented|suffered|had) (?:an?|one|two|several) (?:previous )?episodes? of")],
    *[(p, "historical", "pre", 3) for p in (
        r"previous", r"prior", r"former", r"old", r"status post", r"s/p", r"post[- ]?surgical",
        r"previously (?:diagnosed|treated|operated) (?:with|for|of)", r"previously",
        r"surgically treated", r"childhood",
    )],
    *[(p, "historical", "post", 6) for p in (
        r"(?:\d+|several|many|two|three|four|five|some) (?:years|months|weeks|decades) ago", r"years ago",
        r"ago", r"in the past", r"in childhood", r"resolved", r"healed", r"previously", r"in (?:19|20)\d\d",
        r"which resolved", r"since resolved", r"in remission",
    )],
    *[(p, "historical", "pre", 4) for p in (r"resolution of", r"resolved", r"recovered from")],
    # --- family ---------------------------------------------------------------------------
    *[(p, "family", "pre", 12) for p in (
        r"family history of", r"family history", r"family history positive for", r"fhx of", r"fh of",
        r"familial history of", r"family antecedents? of",
    )],
    *[(p, "family", "pre", 6) for p in (
        r"(?:mother|father|sister|brother|sibling|aunt|uncle|grandmother|grandfather|grandparent|cousin|"
        r"son|daughter|niece|nephew|parent|twin)(?:'s|s)?",
        r"maternal", r"paternal", r"relatives?", r"first[- ]degree relatives?", r"family members?",
    )],
    *[(p, "family", "post", 4) for p in (
        r"in (?:his|her|the|a|their|one|two|several|both) (?:\w+ )?(?:mother|father|sisters?|brothers?|siblings?|"
        r"aunts?|uncles?|grandmothers?|grandfathers?|grandparents?|cousins?|sons?|daughters?|nieces?|nephews?|"
        r"parents?|twin|relatives?|family members?|family)",
        r"in the family", r"in (?:his|her) family", r"in relatives", r"in several relatives",
    )],
    # --- hypothetical ---------------------------------------------------------------------
    *[(p, "hypothetical", "pre", 8) for p in (
        r"if", r"in case of", r"in the event of", r"should", r"unless", r"risks? of", r"at risk for",
        r"at risk of", r"risks? for", r"to prevent", r"prevent", r"prevention of", r"to avoid", r"avoid",
        r"prophylaxis of", r"prophylaxis for", r"prophylaxis against", r"prophylactic", r"watch for",
        r"monitor for", r"return if", r"call if", r"screening for", r"screening of", r"would",
        r"could develop", r"may develop", r"in order to avoid", r"scheduled for", r"planned",
        r"will undergo", r"will be performed", r"candidate for", r"pending", r"to be scheduled",
        r"warning signs of", r"alarm signs of", r"predisposition to", r"predisposing to",
    )],
    *[(p, "hypothetical", "post", 4) for p in (
        r"prophylaxis", r"(?:is|was|was being) planned", r"(?:is|was) scheduled", r"is pending",
        r"to be performed", r"will be performed", r"risk",
    )],
    # --- termination terms: end every scope ------------------------------------------------
    *[(p, "term", "both", 0) for p in (
        r"but", r"however", r"although", r"though", r"yet", r"except", r"apart from", r"aside from",
        r"which", r"who", r"whose", r"nevertheless", r"nonetheless", r"instead", r"secondary to",
        r"due to", r"because", r"since", r"cause of", r"source of", r"etiology of", r"reason for",
        r"presents", r"presented", r"presenting", r"complains", r"complained", r"complaining", r"reports", r"reported",
        r"consults", r"consulting",
        r"developed", r"showed", r"shows", r"revealed", r"reveals", r"admitted", r"while", r"whereas", r"remains", r"consulted", r"so", r"therefore",
        r"thus", r"hence", r"then", r"after which", r"so that", r"that",
    )],
    # --- the subject changes: ends every scope except a condition ("if the patient ...") ------
    *[(p, "term_nh", "both", 0) for p in (r"he", r"she", r"the patient", r"patient", r"they")],
    # --- terminations that end every scope except "family" (whose condition it is) ------------
    *[(p, "term_nf", "both", 0) for p in (
        r"(?:was|is|were|been) diagnosed (?:with|of)", r"diagnosed with", r"was admitted", r"underwent",
    )],
]


@dataclass(frozen=True, slots=True)
class Trigger:
    """A trigger found in a sentence (offsets relative to the sentence)."""

    start: int
    end: int
    category: str
    direction: str
    window: int
    text: str


def _first_chars(frag: str) -> set[str]:
    """The characters a pattern fragment can start with (lower case)."""
    if frag.startswith("(?:"):
        depth, i = 0, 0
        for i, ch in enumerate(frag):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
        inner, rest = frag[3:i], frag[i + 1 :]
        alts, depth, cur = [], 0, ""
        for ch in inner:
            if ch == "|" and depth == 0:
                alts.append(cur)
                cur = ""
                continue
            depth += ch == "("
            depth -= ch == ")"
            cur += ch
        alts.append(cur)
        out: set[str] = set()
        for a in alts:
            out |= _first_chars(a + rest) if a else _first_chars(rest.lstrip("?"))
        if rest.startswith(("?", "*")):
            out |= _first_chars(rest[1:].lstrip())
        return out
    if frag.startswith("\\d"):
        return set("0123456789")
    if frag.startswith("["):
        return set(frag[1 : frag.index("]")].replace("-", "").lower())
    return {frag[0].lower()}


def _compile() -> dict[str, tuple[re.Pattern[str], list[tuple[str, str, int]]]]:
    """One alternation per first character, longest patterns first."""
    buckets: dict[str, list[tuple[str, str, str, int]]] = defaultdict(list)
    for pat, cat, direction, window in _LEXICON:
        for ch in _first_chars(pat):
            buckets[ch].append((pat, cat, direction, window))
    buckets["?"].append((r"\?", "uncertain", "post", 3))
    buckets[";"].append((";", "term", "both", 0))
    buckets[","].append((r",\s*(?:with|presenting|showing|and then)\b", "term", "both", 0))
    out: dict[str, tuple[re.Pattern[str], list[tuple[str, str, int]]]] = {}
    for ch, specs in buckets.items():
        specs.sort(key=lambda x: -len(x[0]))
        parts: list[str] = []
        meta: list[tuple[str, str, int]] = []
        for pat, cat, direction, window in specs:
            frag = pat.replace(" ", r"\s+")
            if ch.isalnum():
                frag = rf"{frag}\b"
            parts.append(rf"(?P<t{len(meta)}>{frag})")
            meta.append((cat, direction, window))
        out[ch] = (re.compile("|".join(parts), re.IGNORECASE), meta)
    return out


_PATTERNS: dict[str, tuple[re.Pattern[str], list[tuple[str, str, int]]]] | None = None
_WORD_RE = re.compile(r"\w+")
_START_RE = re.compile(r"\b\w|[?;,]")


@lru_cache(maxsize=8192)
def find_triggers(sentence: str) -> tuple[Trigger, ...]:
    """Find the ConText triggers in one sentence (longest match at each position).

    Args:
        sentence: the sentence text.

    Returns:
        The triggers, pseudo-triggers and termination terms in text order.
    """
    global _PATTERNS
    if _PATTERNS is None:
        _PATTERNS = _compile()
    buckets = _PATTERNS
    out: list[Trigger] = []
    pos = 0
    for w in _START_RE.finditer(sentence):
        i = w.start()
        if i < pos:
            continue
        bucket = buckets.get(sentence[i].lower())
        if bucket is None:
            continue
        pat, meta = bucket
        m = pat.match(sentence, i)
        if m is None or m.lastgroup is None:
            continue
        cat, direction, window = meta[int(m.lastgroup[1:])]
        out.append(Trigger(m.start(), m.end(), cat, direction, window, m.group()))
        pos = m.end()
    return tuple(out)


def _words_between(sentence: str, a: int, b: int) -> int:
    return len(_WORD_RE.findall(sentence, a, b)) if b > a else 0


def _cuts(t: Trigger, other: Trigger, sentence: str) -> bool:
    """Whether ``other`` ends ``t``'s scope."""
    if other.category == "pseudo" or other is t:
        return False
    if other.category == "term":
        return True
    if other.category == "term_nf":
        return t.category != "family"
    if other.category == "term_nh":
        return t.category != "hypothetical"
    if other.category == t.category:
        return False
    if t.category == "family" or other.category == "family":
        return False
    if t.category == "hypothetical" and other.category == "uncertain":
        return False  # "in case of possible changes": the condition dominates
    if t.category == "negated" and other.category == "uncertain" and not sentence[t.end : other.start].strip():
        return False  # "no suspicion of X", "no possible X": the uncertainty is negated too
    if t.category == "negated" and " ".join(other.text.lower().split()) in _RELATIONAL:
        return False  # "no lesions suggestive of X": X is negated too
    return True


def _applies(sentence: str, triggers: tuple[Trigger, ...], t: Trigger, s: int, e: int) -> bool:
    """Whether trigger ``t`` covers the target ``[s, e)`` (sentence-relative)."""
    if t.category in ("pseudo", "term", "term_nf", "term_nh") or (t.start < e and s < t.end):
        return False
    if t.end <= s and t.direction in ("pre", "both"):
        window = t.window
        if _words_between(sentence, t.end, s) > window:
            return False
        if t.window <= 4 and "," in sentence[t.end : s]:
            return False  # short-range triggers ("prior", "old") stop at a comma
        return not any(t.end <= o.start and o.end <= s and _cuts(t, o, sentence) for o in triggers)
    if t.start >= e and t.direction in ("post", "both"):
        window = t.window if t.direction == "post" else max(3, t.window - 2)
        if _words_between(sentence, e, t.start) > window:
            return False
        if t.window <= 4 and "," in sentence[e : t.start]:
            return False
        return not any(e <= o.start and o.end <= t.start and _cuts(t, o, sentence) for o in triggers)
    return False


_RELATIONAL = frozenset({"suggestive of", "compatible with", "consistent with", "indicative of", "suspicious for",
                         "suspicious of", "suggesting", "suggests"})

_MAX_CONTEXT = 400

_SECTION_DEFAULT = {"family_history": "family", "past_history": "historical"}


def _sentence_of(doc: Document, start: int) -> Span:
    sent = doc.sentence_at(start)
    return sent if sent is not None else doc.line_at(start)  # no sentence layer: the line


_FUNCTION_WORDS = frozenset({"to", "of", "for", "with", "in", "on", "at", "by", "be", "as", "from"})


def assert_within(doc: Document, start: int, end: int, phrase: str, *,
                  sentence: Span | None = None) -> tuple[str, str] | None:
    """The negation or uncertainty a trigger *inside* a span puts on it, for a match whose words
    lie apart: in "lung suggestive of metastasis" (the phrase "metastasis to lung" read as a bag)
    the lung finding is only suggested, in "metastasis, without lymph nodes" there is no lymph
    node metastasis. :func:`assert_span` reads only the triggers around a span.

    Args:
        doc: the analysed document.
        start / end: the span's offsets in ``doc.text``.
        phrase: the normalised dictionary phrase matched (a trigger made of its own words,
            e.g. "no" in a phrase that has it, does not count).
        sentence: the sentence containing the span, if known.

    Returns:
        ``(assertion, trigger)`` or None when no trigger inside the span applies.
    """
    sent = sentence if sentence is not None else _sentence_of(doc, start)
    text = doc.text[sent.start : sent.end]
    s, e = start - sent.start, end - sent.start
    words = set(phrase.lower().split()) - _FUNCTION_WORDS
    for t in find_triggers(text):
        if t.category in ("negated", "uncertain") and t.direction in ("pre", "both") and s < t.start and t.end < e \
                and not words.intersection(re.findall(r"[a-z]+", t.text.lower())):
            return t.category, " ".join(t.text.lower().split())
    return None


def assert_span(
    doc: Document, start: int, end: int, *, sentence: Span | None = None, section: str | None = None
) -> tuple[str, str | None]:
    """Decide the assertion of the span ``doc.text[start:end]``.

    Args:
        doc: the analysed document (sentences and sections used when present).
        start: span start offset in ``doc.text``.
        end: span end offset.
        sentence: the sentence containing the span, if the caller already knows it.
        section: the span's section label, if the caller already knows it.

    Returns:
        ``(assertion, trigger)``: one of :data:`ASSERTIONS`, and the trigger text that
        decided it (``"section:<label>"`` when the section decided; ``None`` if affirmed).
    """
    sent = sentence if sentence is not None else _sentence_of(doc, start)
    if sent.end - sent.start > 2 * _MAX_CONTEXT:
        # a run-on "sentence" (no punctuation): triggers reach at most 25 words, so a window
        # around the span keeps the work linear in the note length
        lo = max(sent.start, start - _MAX_CONTEXT)
        hi = min(sent.end, max(end, start) + _MAX_CONTEXT)
        sent = Span(lo, hi, "sentence")
    text = doc.text[sent.start : sent.end]
    s, e = max(0, start - sent.start), max(0, min(end, sent.end) - sent.start)
    triggers = find_triggers(text)
    best: Trigger | None = None
    best_rank = len(PRIORITY)
    best_dist = 10**9
    for t in triggers:
        if t.category not in PRIORITY or not _applies(text, triggers, t, s, e):
            continue
        rank = PRIORITY.index(t.category)
        dist = s - t.end if t.end <= s else t.start - e
        if rank < best_rank or (rank == best_rank and dist < best_dist):
            best, best_rank, best_dist = t, rank, dist
    if best is not None:
        return best.category, " ".join(best.text.lower().split())
    label = section if section is not None else doc.section_at(start)
    if label in _SECTION_DEFAULT:
        return _SECTION_DEFAULT[label], f"section:{label}"
    return "affirmed", None
