"""PCS-INVALID for a code deleted from the ICD-10-PCS tables: the valid codes of its row."""

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
