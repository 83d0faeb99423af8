"""Cached artifacts, the process-wide singleton, and versions by date of service."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from opencac.codesets import clear_knowledge_cache, load_knowledge
from opencac.codesets.versions import add_version, parse_order_file
from opencac.errors import CodeSetSourceError, CodeSetVersionError, UnknownCodeError

from .conftest import FIXTURES, isolated_env


def test_singleton_and_cache_round_trip(kb, kb_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_knowledge() is kb
    for p in kb.paths.values():
        assert p.is_file()
    clear_knowledge_cache()

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("should load from the cache, not recompile")

    monkeypatch.setattr("opencac.codesets.build.compile_artifacts", boom)
    again = load_knowledge()
    assert again is not kb
    assert again.get("E11.9") == kb.get("E11.9")
    assert again.get("0DTJ4ZZ") == kb.get("0DTJ4ZZ")
    assert again.versions == kb.versions
    with pytest.raises(CodeSetVersionError):
        load_knowledge(fy=1999)


def test_corrupt_cache_is_one_clear_error(tmp_path: Path, kb) -> None:  # type: ignore[no-untyped-def]
    from opencac.codesets.kb import KnowledgeBase

    bad = {k: tmp_path / p.name for k, p in kb.paths.items()}
    for p in bad.values():
        p.write_bytes(b"not a pickle")
    with pytest.raises(CodeSetSourceError):
        KnowledgeBase(bad)


def test_order_file() -> None:
    nodes = parse_order_file(FIXTURES / "icd10cm_order_2019.txt")
    by = {n.code: n for n in nodes}
    assert by["M54.5"].billable and by["M54.5"].parent == "M54" and not by["M54"].billable
    assert by["R51"].billable


@pytest.mark.slow
def test_older_fiscal_year(tmp_path: Path) -> None:
    with isolated_env(tmp_path):
        info = add_version(2019, tabular=FIXTURES / "tabular_fy2019.xml")
        assert info["fy"] == 2019 and info["codes"] == 8
        with pytest.raises(CodeSetVersionError):
            add_version(2018, tabular=FIXTURES / "tabular_fy2019.xml")  # file says FY2019
        pinfo = add_version(2018, order_file=FIXTURES / "icd10pcs_order_2018.txt", system="icd10pcs")
        assert pinfo["codes"] == 2
        with pytest.raises(CodeSetVersionError):
            add_version(2018, tabular=FIXTURES / "tabular_fy2019.xml", system="pcs")
        kb = load_knowledge()
        try:
            # ICD-10-PCS FY2018 (fixture) + FY2025 (bundled)
            d18 = dt.date(2018, 3, 1)
            old = kb.get("5A1D00Z")
            assert old.valid_to_fy == 2024 and not old.billable
            assert kb.is_billable("5A1D00Z", d18) and not kb.is_billable("5A1D00Z")
            assert kb.pcs_axes("5A1D00Z")[0][2] == "Extracorporeal or Systemic Assistance and Performance"
            assert kb.is_billable("0DTJ4ZZ", d18) and kb.is_billable("0DTJ4ZZ")
            assert not kb.is_billable("0DTJ0ZZ", d18) and kb.get("0DTJ0ZZ").valid_from_fy == 2025
            assert kb.as_of_equivalent("5A1D00Z", dt.date(2025, 3, 1)) is None
            assert "5A1D00Z" not in {c.code for c in kb.codes("icd10pcs")}
            with pytest.raises(CodeSetVersionError):
                kb.get("5A1D00Z", as_of=dt.date(2025, 3, 1))
            assert "icd10pcs-2018" in kb.versions
            assert kb.cm_fiscal_years == (2019, 2026)
            day = dt.date(2018, 11, 1)  # FY2019
            assert kb.is_billable("R51", day) and not kb.is_billable("R51")
            assert kb.is_billable("M54.5", day) and not kb.is_billable("M54.5", dt.date(2025, 11, 1))
            assert not kb.is_billable("M54.50", day)
            assert kb.as_of_equivalent("M54.50", day) == "M54.5"
            assert kb.as_of_equivalent("R51.9", day) == "R51"
            assert kb.as_of_equivalent("R51.9", dt.date(2026, 1, 1)) == "R51.9"
            assert kb.current_equivalents("R51")[0] == "R51.9"
            r519 = kb.get("R51.9")
            assert (r519.valid_from_fy, r519.valid_to_fy) == (2026, None)
            assert kb.get("R99").valid_to_fy is None
            with pytest.raises(CodeSetVersionError):
                kb.get("R51.9", as_of=day)
            assert kb.get("R51", as_of=day).code == "R51"
            with pytest.raises(UnknownCodeError):
                kb.get("Q99.999", as_of=day)
        finally:
            clear_knowledge_cache()


def test_prune_keeps_recent_keys(tmp_path: Path) -> None:
    import os

    from opencac.codesets.build import _prune

    for i in range(6):
        for part in ("cm", "pcs", "terms"):
            p = tmp_path / f"{part}-key{i}.pkl"
            p.write_bytes(b"x")
            os.utime(p, (1000 + i, 1000 + i))
    _prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("cm-*.pkl")) == ["cm-key4.pkl", "cm-key5.pkl"]
    assert len(list(tmp_path.glob("*.pkl"))) == 6


def test_cached_entries_are_packed_and_the_children_map_matches_them(kb) -> None:
    from opencac.codesets.packed import PackedMap

    # stored packed: a process that looks up a few codes does not unpickle all of them
    assert isinstance(kb._cm, PackedMap)
    assert isinstance(kb._pcs_data(), PackedMap)
    stored = kb._children_map()
    assert isinstance(stored, PackedMap)
    derived: dict[str, list[str]] = {}
    for code in kb._cm:
        parent = kb._cm[code][2]
        if parent is not None:
            derived.setdefault(parent, []).append(code)
    assert dict(stored.items()) == derived
    assert "E11.9" in stored["E11"] and "E11" not in stored.get("E11.9", [])
    assert [c.code for c in kb.children("N18.3")] == derived["N18.3"]
    assert kb.get("0DTJ4ZZ").axes  # a PCS entry decoded on demand keeps its axes
