"""History codes read from the tabular's inclusion terms (opencac.coding.history)."""

from __future__ import annotations

import pytest

from opencac.coding.dictionary import DictHit
from opencac.coding.history import history_code, history_hits, history_ranges


def _hit(code: str, assertion: str, subsumed: bool = False, start: int = 15) -> DictHit:
    return DictHit(code, "icd10cm", "neoplasm", False, start, start + 13, "breast cancer", "breast cancer", 1.0, 2,
                   subsumed, assertion, "history of", "history", 0)


@pytest.mark.parametrize(("code", "assertion", "expected"), [
    ("C50.911", "historical", "Z85.3"),  # Conditions classifiable to C50.-
    ("C18.9", "historical", "Z85.038"),  # C18, deeper than Z85.0's digestive organs
    ("C34.90", "historical", "Z85.118"),
    ("C18.9", "family", "Z80.0"),  # C15-C26
    ("C50.9", "family", "Z80.3"),
    ("E11.9", "family", "Z83.3"),  # E08-E13
    ("A15.0", "historical", "Z86.1"),  # a header: the codes below it decide (Z86.11 tuberculosis)
    ("I63.9", "historical", "Z86.7"),
    ("Q21.0", "family", "Z82.7"),  # Q00-Q99
])
def test_history_code_from_the_inclusion_terms(kb, code: str, assertion: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert history_code(kb, code, assertion) == expected


@pytest.mark.parametrize(("code", "assertion"), [
    ("S72.001A", "historical"),  # an injury: Z87.81 lists no conditions, Z87.82 excepts fractures
    ("R52", "historical"),  # a finding has no history code
    ("C50.9", "negated"), ("C50.9", "affirmed"), ("C50.9", "uncertain"),
])
def test_no_history_code(kb, code: str, assertion: str) -> None:  # type: ignore[no-untyped-def]
    assert history_code(kb, code, assertion) is None


def test_ranges_come_from_the_categories_of_each_assertion(kb) -> None:  # type: ignore[no-untyped-def]
    ranges = history_ranges(kb)
    assert {z[:3] for _, z in ranges["family"]} <= {"Z80", "Z81", "Z82", "Z83", "Z84"}
    assert {z[:3] for _, z in ranges["historical"]} <= {"Z85", "Z86", "Z87"}
    # "Conditions classifiable to S00-T88, except traumatic fractures" restricts: not read
    assert not any(z.startswith("Z87.82") for _, z in ranges["historical"])
    assert history_ranges(kb) is ranges  # memoised


def test_history_hits_are_affirmed_hits_on_the_same_words(kb) -> None:  # type: ignore[no-untyped-def]
    hits = [_hit("C50.9", "historical"), _hit("C50.9", "affirmed", start=40), _hit("C80.1", "historical", True),
            _hit("I63.9", "historical", start=60)]
    got = history_hits(kb, hits)
    assert [(h.code, h.start, h.incomplete) for h in got] == [("Z85.3", 15, False), ("Z86.7", 60, True)]
    assert all(h.assertion == "affirmed" and h.source == "inclusion" and h.phrase == "breast cancer" for h in got)
    # the same history code on the same words once
    assert len(history_hits(kb, [_hit("C50.9", "historical"), _hit("C50.919", "historical")])) == 1
