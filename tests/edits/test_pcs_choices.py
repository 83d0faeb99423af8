"""PCS-INVALID and PCS-INCOMPLETE name the choices a coder has: the valid codes of a deleted
code's row, the completions of a table prefix."""

from __future__ import annotations

import pytest

from opencac.edits import check_claim


@pytest.fixture(scope="module")
def kb():
    from opencac.codesets import load_knowledge

    return load_knowledge()


def _edit(result, eid: str):
    found = [e for e in result.edits if e.id == eid]
    assert found, [e.id for e in result.edits]
    return found[0]


def test_deleted_code_names_the_valid_codes_of_its_row(kb) -> None:
    """3E0T3CZ (regional anesthetic, deleted) -> 3E0T3BZ (anesthetic agent) and its neighbours."""
    res = check_claim({"context": {"setting": "inpatient", "age": 70, "sex": "F", "discharge_date": "2025-11-03"},
                       "diagnoses": ["S72.001A"], "procedures": ["3E0T3CZ"]}, kb=kb, strict_codes=False)
    e = _edit(res, "PCS-INVALID")
    assert "3E0T3BZ (Anesthetic Agent)" in e.message
    assert {"3E0T3CZ", "3E0T3BZ"} <= set(e.codes)
    assert e.fix is None  # nothing in a bare claim says which one was done


def test_malformed_code_lists_nothing(kb) -> None:
    res = check_claim({"context": {"setting": "outpatient", "age": 40, "sex": "M", "date_of_service": "2025-11-03"},
                       "diagnoses": ["K35.80"], "procedures": ["0DTJ4ZO"]}, kb=kb, strict_codes=False)
    e = _edit(res, "PCS-INVALID")
    assert "Valid codes" not in e.message


IP = {"setting": "inpatient", "age": 70, "sex": "F", "discharge_date": "2025-11-03"}


def test_prefix_with_few_completions_names_them(kb) -> None:
    res = check_claim({"context": IP, "diagnoses": ["J96.00"], "procedures": ["5A19"]}, kb=kb, strict_codes=False)
    e = _edit(res, "PCS-INCOMPLETE")
    assert e.severity == "error"
    for code in ("5A1935Z", "5A1945Z", "5A1955Z"):
        assert code in e.message and code in e.codes
    assert "24-96 Consecutive Hours" in e.message


def test_prefix_with_many_completions_names_the_next_axis(kb) -> None:
    res = check_claim({"context": IP, "diagnoses": ["J96.00"], "procedures": ["0BH1"]}, kb=kb, strict_codes=False)
    e = _edit(res, "PCS-INCOMPLETE")
    assert "the approach is one of" in e.message
    assert "Via Natural or Artificial Opening (7)" in e.message
    assert e.codes == ["0BH1"]
