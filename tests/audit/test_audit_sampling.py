"""Sampling: reproducible draws, allocations, targeting, probes, scoping."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from opencac.audit.records import EncounterRecord, read_frame
from opencac.audit.sampling import (
    TargetCriteria,
    allocate,
    draw_sample,
    frame_fingerprint,
    full_sample_from_probe,
    probe_sample,
    random_key,
    simple_random_sample,
    stratified_sample,
    targeted_sample,
)
from opencac.audit.scope import AuditScope
from opencac.audit.synthetic import synthetic_population
from opencac.errors import AuditInputError, SamplingError

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def frame() -> list[EncounterRecord]:
    return synthetic_population(600, seed=11)


def test_same_seed_same_sample_different_seed_different(frame: list[EncounterRecord]) -> None:
    a = simple_random_sample(frame, 50, seed=2026)
    b = simple_random_sample(list(frame), 50, seed=2026)
    c = simple_random_sample(frame, 50, seed=2027)
    assert a.ids == b.ids
    assert a.ids != c.ids
    assert len(set(a.ids)) == 50 and set(a.ids) <= {r.encounter_id for r in frame}
    assert a.reproduces(frame) and c.reproduces(frame)


def test_ranking_is_documented_sha256(frame: list[EncounterRecord]) -> None:
    # Anyone can redraw the sample with any SHA-256 tool: n smallest keys.
    s = simple_random_sample(frame, 10, seed=7)
    keys = sorted((hashlib.sha256(f"opencac-sample-v1|7|{r.encounter_id}".encode()).hexdigest(), r.encounter_id)
                  for r in frame)
    assert s.ids == [eid for _, eid in keys[:10]]
    assert s.items[0].key == random_key(7, s.ids[0])


def test_frame_hash_recorded_and_changed_frame_does_not_reproduce(frame: list[EncounterRecord]) -> None:
    s = simple_random_sample(frame, 20, seed=1)
    assert s.frame_hash == frame_fingerprint([r.encounter_id for r in frame])
    assert s.frame_size == 600
    assert not s.reproduces(frame[1:])
    assert not s.reproduces(list(reversed(frame)))
    d = s.to_dict()
    assert d["seed"] == 1 and d["frame_ids"][0] == frame[0].encounter_id and len(d["items"]) == 20


def test_allocation_proportional_with_minimum() -> None:
    assert allocate({"a": 500, "b": 300, "c": 200}, 100) == {"a": 50, "b": 30, "c": 20}
    # c's proportional share (2) is below the minimum 10: fixed at 10, the rest 90 shared 980:10
    alloc = allocate({"a": 900, "b": 80, "c": 20}, 100, min_per_stratum=10)
    assert alloc["c"] == 10 and alloc["b"] == 10 and alloc["a"] == 80 and sum(alloc.values()) == 100
    # a stratum smaller than the minimum is taken whole
    assert allocate({"a": 100, "b": 3}, 20, min_per_stratum=5)["b"] == 3
    assert allocate({"a": 50, "b": 10}, 20, allocation="equal") == {"a": 10, "b": 10}
    with pytest.raises(SamplingError):
        allocate({"a": 50, "b": 50, "c": 50}, 20, min_per_stratum=10)
    with pytest.raises(SamplingError):
        allocate({"a": 5}, 6)


def test_stratified_sample(frame: list[EncounterRecord]) -> None:
    s = stratified_sample(frame, 60, seed=3, by="payer", min_per_stratum=8)
    counts = Counter(i.stratum for i in s.items)
    assert sum(counts.values()) == 60
    assert all(v >= 8 for v in counts.values())
    assert counts == Counter({h: v["sample"] for h, v in s.strata.items()})
    by_id = {r.encounter_id: r for r in frame}
    assert all(by_id[i.encounter_id].payer == i.stratum for i in s.items)
    assert s.reproduces(frame)
    assert stratified_sample(frame, 60, seed=4, by="payer", min_per_stratum=8).ids != s.ids


def test_stratify_by_confidence_band(frame: list[EncounterRecord]) -> None:
    s = stratified_sample(frame, 40, seed=3, by="confidence_band", allocation="equal")
    assert set(s.strata) == {"<0.50", "0.50-0.79", "0.80-0.89", ">=0.90"}
    assert all(v["sample"] == 10 for v in s.strata.values())


def test_targeted_sample_takes_highest_risk_first(frame: list[EncounterRecord]) -> None:
    crit = TargetCriteria(drg_weight_min=1.5, confidence_below=0.2)
    s = targeted_sample(frame, 30, seed=5, criteria=crit)
    by_id = {r.encounter_id: r for r in frame}
    both = [r for r in frame if r.drg_weight >= 1.5 and r.confidence < 0.2]
    assert 0 < len(both) < 30
    assert set(s.ids[: len(both)]) == {r.encounter_id for r in both}
    assert all(i.risk == 2.0 for i in s.items[: len(both)])
    for i in s.items:
        r = by_id[i.encounter_id]
        assert r.drg_weight >= 1.5 or r.confidence < 0.2
    st = targeted_sample(frame, 1000, seed=5, criteria={"straight_through_only": True, "confidence_below": 0.5})
    assert all(by_id[i].coded_by == "ai_straight_through" and by_id[i].confidence < 0.5 for i in st.ids)
    assert st.notes and "all were taken" in st.notes[0]
    with pytest.raises(SamplingError):
        targeted_sample(frame, 5, seed=1, criteria=TargetCriteria())


def test_probe_then_full_sample_extends_the_probe(frame: list[EncounterRecord]) -> None:
    probe = probe_sample(frame, 30, seed=9)
    full = full_sample_from_probe(frame, probe, probe_errors=3)
    assert full.size_calc is not None and full.size == full.size_calc.recommended
    assert full.ids[:30] == probe.ids
    assert full.size > 30
    with pytest.raises(SamplingError):
        full_sample_from_probe(frame[:-1], probe, 3)


def test_draw_sample_errors(frame: list[EncounterRecord]) -> None:
    with pytest.raises(SamplingError) as exc:
        draw_sample(frame, "systematic", seed=1, n=5)
    assert "random" in str(exc.value)
    with pytest.raises(SamplingError):
        simple_random_sample(frame, 601, seed=1)
    with pytest.raises(SamplingError):
        simple_random_sample([], 1, seed=1)
    dup = [frame[0], frame[0]]
    with pytest.raises(AuditInputError):
        simple_random_sample(dup, 1, seed=1)


def test_scope_filters_fixture_frame() -> None:
    recs = read_frame(FIX / "frame.csv")
    assert [r.encounter_id for r in recs] == ["E001", "E002", "E003", "E004", "E005", "E006"]
    assert recs[0].codes == ("I50.23", "I10", "E11.9") and recs[1].edits == ("excludes1",)
    assert recs[0].automated is True and recs[0].accurate is None and recs[2].confidence is None
    ids = lambda scope: [r.encounter_id for r in scope.apply(recs)]  # noqa: E731
    assert ids(AuditScope(settings=("inpatient",), coded_by=("ai_straight_through",))) == ["E001", "E005"]
    assert ids(AuditScope(date_from=date(2026, 2, 1), date_to=date(2026, 2, 28))) == ["E003", "E004"]
    assert ids(AuditScope(confidence_min=0.5, confidence_max=0.9)) == ["E002", "E006"]
    assert ids(AuditScope(code_families=("I20-I25",))) == ["E004"]
    assert ids(AuditScope(code_families=("E11",), payers=("Commercial",))) == ["E006"]
    assert ids(AuditScope(drgs=("291", "690"), model_versions=("opencac-2026.2",))) == ["E005"]
    scope = AuditScope.from_dict({"settings": "inpatient,outpatient", "date_from": "2026-01-01", "coders": ["c1"]})
    assert ids(scope) == ["E002", "E004"]
    assert AuditScope.from_dict(scope.to_dict()) == scope
    with pytest.raises(AuditInputError):
        AuditScope(coded_by=("robot",))
    with pytest.raises(AuditInputError):
        AuditScope.from_dict({"colour": "red"})


def test_bad_frame_rows(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("encounter_id,confidence\nA,high\n")
    with pytest.raises(AuditInputError, match="expected a number"):
        read_frame(p)
    p.write_text("id,x\n1,2\n")
    with pytest.raises(AuditInputError, match="encounter_id"):
        read_frame(p)
    p.write_text("encounter_id\nA\nA\n")
    with pytest.raises(AuditInputError, match="duplicate"):
        read_frame(p)
