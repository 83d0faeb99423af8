"""Batch runs with a light fake engine: failure isolation, determinism, resume bookkeeping."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from batch_fakes import CountingFactory, FakeFactory

from opencac.batch.checkpoint import Ledger
from opencac.batch.runner import BatchConfig, run_batch
from opencac.errors import BatchConfigError, CheckpointError, ModelNotFoundError

TEXTS = [
    "Known diabetes, no fever today.",
    "Hypertension follow-up; chest x-ray normal.",
    "Back pain after a fall.",
    "Diabetes and hypertension, stable.",
    "Fever for two days, x-ray of the chest.",
]


def _notes(d: Path, n: int = 12, bad: dict[int, bytes] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        data = (bad or {}).get(i, f"Note {i}. {TEXTS[i % len(TEXTS)]}".encode())
        (d / f"doc{i:03d}.txt").write_bytes(data)
    return d


def _cfg(inp: Path, out: Path, **kw: object) -> BatchConfig:
    base: dict[str, object] = {"rules": False, "chunk_size": 3, "engine_factory": FakeFactory(),
                               "checkpoint_interval_s": 0.0}
    base.update(kw)
    return BatchConfig(input=inp, out=out, **base)  # type: ignore[arg-type]


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("workers", [0, 2])
def test_failure_isolation_bad_documents_in_the_middle(tmp_path: Path, workers: int) -> None:
    inp = _notes(tmp_path / "in", 12, bad={4: b"\x00\x01\x02binary", 5: b"  \n ", 6: b"EXPLODE here", 7: b"\xff\xfe"})
    s = run_batch(_cfg(inp, tmp_path / "out", workers=workers))
    assert (s.documents, s.coded, s.failures) == (12, 8, 4)
    ok = _rows(tmp_path / "out" / "results.jsonl")
    assert [r["doc_id"] for r in ok] == [f"doc{i:03d}" for i in (0, 1, 2, 3, 8, 9, 10, 11)]
    fails = {r["doc_id"]: r for r in _rows(tmp_path / "out" / "failures.jsonl")}
    assert set(fails) == {"doc004", "doc005", "doc006", "doc007"}
    assert fails["doc004"]["error_code"] == "OC-E003"
    assert fails["doc005"]["error_code"] == "OC-E002"
    assert fails["doc006"]["error_type"] == "RuntimeError" and fails["doc006"]["error_code"] == "OC-E704"
    assert fails["doc007"]["error_code"] == "OC-E003"
    # no note text leaks into the failures file
    assert "EXPLODE" not in (tmp_path / "out" / "failures.jsonl").read_text(encoding="utf-8")
    # documents after the bad ones were coded normally
    assert ok[-1]["diagnoses"][0]["code"] in {"E11.9", "I10", "R50.9", "R52"}


def test_inline_and_process_pool_give_identical_output(tmp_path: Path) -> None:
    inp = _notes(tmp_path / "in", 20)
    run_batch(_cfg(inp, tmp_path / "a", workers=0, tsv=True))
    run_batch(_cfg(inp, tmp_path / "b", workers=2, tsv=True, chunk_size=2))
    for name in ("results.jsonl", "failures.jsonl", "D.tsv", "P.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_tsv_is_codiesp_style_best_first(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "S1.txt").write_text("fever, diabetes and pain; x-ray", encoding="utf-8")
    run_batch(_cfg(inp, tmp_path / "out", workers=0, tsv=True))
    assert (tmp_path / "out" / "D.tsv").read_text().splitlines() == ["S1\te11.9", "S1\tr50.9", "S1\tr52"]
    assert (tmp_path / "out" / "P.tsv").read_text().splitlines() == ["S1\tbw03zzz"]


def test_parquet_output_and_jsonl_input(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"mrn": f"m{i}", "note": TEXTS[i]}) for i in range(5)) + "\n")
    s = run_batch(_cfg(src, tmp_path / "out", workers=0, output_format="parquet", id_column="mrn",
                       text_column="note"))
    t = pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()
    assert s.coded == 5 and [r["doc_id"] for r in t] == [f"m{i}" for i in range(5)]
    assert t[3]["dx_codes"] == ["E11.9", "I10"]
    assert json.loads(t[3]["diagnoses"])[0]["evidence"][0]["text"].lower() == "diabetes"


def test_duplicate_ids_coded_once_and_reported(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    recs = [{"id": "a", "text": "diabetes"}, {"id": "b", "text": "fever"}, {"id": "a", "text": "pain"}]
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    s = run_batch(_cfg(src, tmp_path / "out", workers=0))
    assert (s.coded, s.duplicates) == (2, 1)
    assert [r["doc_id"] for r in _rows(tmp_path / "out" / "results.jsonl")] == ["a", "b"]
    fails = _rows(tmp_path / "out" / "failures.jsonl")
    assert fails[0]["doc_id"] == "a" and fails[0]["error_code"] == "OC-E703"
    # a resumed run over the finished checkpoint neither recodes nor re-reports
    s2 = run_batch(_cfg(src, tmp_path / "out", workers=0))
    assert (s2.coded, s2.duplicates, s2.resumed_from) == (2, 1, 3)


def test_resume_skips_committed_and_cleans_orphan_chunks(tmp_path: Path) -> None:
    inp = _notes(tmp_path / "in", 10)
    full = tmp_path / "full"
    run_batch(_cfg(inp, full, workers=0))
    out = tmp_path / "out"
    run_batch(_cfg(inp, out, workers=0))
    # Simulate a kill: forget the last two committed chunks but leave one's file behind
    # (renamed but not committed) and a half-written temporary file.
    db = sqlite3.connect(out / "_checkpoint" / "ledger.sqlite")
    last = [r[0] for r in db.execute("SELECT seq FROM chunks ORDER BY seq DESC LIMIT 2")]
    db.execute(f"DELETE FROM docs WHERE seq IN ({','.join('?' * len(last))})", last)
    db.execute(f"DELETE FROM chunks WHERE seq IN ({','.join('?' * len(last))})", last)
    db.commit()
    db.close()
    (out / "_checkpoint" / "chunks" / "c9999999.jsonl.tmp").write_text("garbage")
    for name in ("results.jsonl", "failures.jsonl"):
        (out / name).unlink()
    s = run_batch(_cfg(inp, out, workers=0))
    assert s.resumed_from == 6  # chunks of 3,3,3,1: the first two stay committed
    assert s.coded == 10
    assert (out / "results.jsonl").read_bytes() == (full / "results.jsonl").read_bytes()
    files = sorted(p.name for p in (out / "_checkpoint" / "chunks").iterdir())
    assert all(f.endswith(".jsonl") for f in files)
    assert len(files) == len(Ledger(out).chunk_files())


def test_resume_refuses_other_settings_and_restart_starts_over(tmp_path: Path) -> None:
    inp = _notes(tmp_path / "in", 4)
    out = tmp_path / "out"
    run_batch(_cfg(inp, out, workers=0))
    with pytest.raises(CheckpointError) as exc:
        run_batch(_cfg(inp, out, workers=0, model="other-model"))
    assert "model" in str(exc.value) and "--restart" in str(exc.value)
    s = run_batch(_cfg(inp, out, workers=0, model="other-model", resume=False))
    assert s.resumed_from == 0 and s.coded == 4


def test_bad_settings_are_one_clear_error(tmp_path: Path) -> None:
    inp = _notes(tmp_path / "in", 1)
    with pytest.raises(BatchConfigError):
        run_batch(_cfg(inp, tmp_path / "o", workers=-1))
    with pytest.raises(BatchConfigError):
        run_batch(_cfg(inp, tmp_path / "o", output_format="csv"))
    with pytest.raises(BatchConfigError, match="Ray batch size"):
        run_batch(_cfg(inp, tmp_path / "o", ray_batch_size=0))


def test_engine_that_cannot_load_fails_the_run_clearly(tmp_path: Path) -> None:
    inp = _notes(tmp_path / "in", 3)
    with pytest.raises(ModelNotFoundError) as exc:
        run_batch(_cfg(inp, tmp_path / "o", workers=1, engine_factory=BrokenFactory()))
    assert "no such model" in str(exc.value)


class BrokenFactory:
    def __call__(self) -> None:
        raise ModelNotFoundError("no such model: nope")


def test_engine_loaded_once_per_worker_not_per_document(tmp_path: Path) -> None:
    inp = _notes(tmp_path / "in", 24)
    log = tmp_path / "loads.log"
    s = run_batch(_cfg(inp, tmp_path / "out", workers=2, chunk_size=2, engine_factory=CountingFactory(str(log))))
    loads = log.read_text().split()
    assert s.coded == 24
    assert 1 <= len(loads) <= 2 and len(set(loads)) == len(loads)  # at most one load per worker process


def test_rules_layer_output_is_kept_in_jsonl_and_parquet(tmp_path: Path) -> None:
    pytest.importorskip("opencac.edits.api", reason="the rules layer has not landed yet")
    pq = pytest.importorskip("pyarrow.parquet")
    inp = _notes(tmp_path / "in", 3)
    run_batch(_cfg(inp, tmp_path / "j", workers=0, rules=True))
    run_batch(_cfg(inp, tmp_path / "p", workers=0, rules=True, output_format="parquet"))
    rows = _rows(tmp_path / "j" / "results.jsonl")
    assert all(isinstance(r["rules"], dict) and "final_codes" in r["rules"] for r in rows)
    table = pq.read_table(tmp_path / "p" / "results.parquet").to_pylist()
    for r, t in zip(rows, table, strict=True):
        assert t["final_codes"] == [f["code"] for f in r["rules"]["final_codes"]]
        assert json.loads(t["rules"]) == r["rules"]
        assert json.loads(t["route"]) == r.get("route")


def test_a_second_run_on_the_same_output_is_refused(tmp_path: Path) -> None:
    inp = _notes(tmp_path / "in", 2)
    holder = Ledger(tmp_path / "out")  # stands for a run in progress
    try:
        with pytest.raises(CheckpointError) as exc:
            run_batch(_cfg(inp, tmp_path / "out", workers=0))
        assert "another batch run" in str(exc.value)
        with pytest.raises(CheckpointError):
            run_batch(_cfg(inp, tmp_path / "out", workers=0, resume=False))
    finally:
        holder.close()
    assert run_batch(_cfg(inp, tmp_path / "out", workers=0)).coded == 2


def test_a_document_that_kills_its_worker_is_isolated(tmp_path: Path) -> None:
    from batch_fakes import CrashingFactory

    inp = _notes(tmp_path / "in", 14, bad={3: b"CRASH diabetes", 10: b"fever CRASH"})
    s = run_batch(_cfg(inp, tmp_path / "out", workers=2, chunk_size=4, engine_factory=CrashingFactory()))
    assert (s.coded, s.failures) == (12, 2)
    fails = {r["doc_id"]: r for r in _rows(tmp_path / "out" / "failures.jsonl")}
    assert set(fails) == {"doc003", "doc010"}
    assert all(f["error_code"] == "OC-E705" for f in fails.values())
    ref = run_batch(_cfg(inp, tmp_path / "ref", workers=0, engine_factory=FakeFactory()))
    ok_ref = [r for r in _rows(tmp_path / "ref" / "results.jsonl") if r["doc_id"] not in fails]
    assert _rows(tmp_path / "out" / "results.jsonl") == ok_ref
    assert ref.coded == 14


def test_context_column_reaches_the_engine_and_bad_context_fails_alone(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    recs = [{"id": "a", "text": "diabetes", "context": {"setting": "inpatient", "age": 71, "sex": "F"}},
            {"id": "b", "text": "fever", "context": {"date_of_service": "not-a-date"}},
            {"id": "c", "text": "pain"}]
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    s = run_batch(_cfg(src, tmp_path / "out", workers=0))
    rows = {r["doc_id"]: r for r in _rows(tmp_path / "out" / "results.jsonl")}
    assert (s.coded, s.failures) == (2, 1)
    assert rows["a"]["context"]["setting"] == "inpatient" and rows["a"]["context"]["age"] == 71
    assert rows["c"]["context"]["setting"] == "outpatient"
    fail = _rows(tmp_path / "out" / "failures.jsonl")[0]
    assert fail["doc_id"] == "b" and fail["error_code"] == "OC-E704" and "context" in fail["error"]


def test_exception_messages_that_quote_the_note_are_not_written(tmp_path: Path) -> None:
    from batch_fakes import LeakyFactory

    inp = _notes(tmp_path / "in", 3, bad={1: b"patient secret: Jane Roe, 12 Elm St"})
    s = run_batch(_cfg(inp, tmp_path / "out", workers=0, engine_factory=LeakyFactory()))
    text = (tmp_path / "out" / "failures.jsonl").read_text()
    assert s.failures == 1 and "Jane Roe" not in text and "secret" not in text
    fail = json.loads(text)
    assert fail["error_type"] == "KeyError" and "batch_fakes.py" in fail["error"]


@pytest.mark.parametrize("workers", [0, 1])
def test_a_document_that_hangs_is_abandoned_after_the_timeout(tmp_path: Path, workers: int) -> None:
    inp = _notes(tmp_path / "in", 5, bad={2: b"HANG diabetes"})
    s = run_batch(_cfg(inp, tmp_path / "out", workers=workers, doc_timeout_s=0.5))
    assert (s.coded, s.failures) == (4, 1)
    fail = _rows(tmp_path / "out" / "failures.jsonl")[0]
    assert fail["doc_id"] == "doc002" and "longer than 0.5 s" in fail["error"]


def test_document_coder_limits_blas_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import opencac.batch.worker as worker

    calls: list[int] = []
    monkeypatch.setattr(worker, "one_blas_thread", lambda: calls.append(1) or True)
    coder = worker.DocumentCoder(FakeFactory(), rules=False, routing=False)
    assert calls == [1]
    assert coder.engine is not None
