"""Batch input readers: a .txt directory, JSONL and Parquet with custom column names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opencac.batch.readers import open_source
from opencac.errors import BatchConfigError, InputError, InputNotFoundError


def test_txt_directory_sorted_ids_and_paths(tmp_path: Path) -> None:
    for name in ("b.txt", "a.txt", "c.md"):
        (tmp_path / name).write_text("note " + name, encoding="utf-8")
    src = open_source(tmp_path)
    docs = list(src)
    assert src.format == "txt-dir"
    assert [d.doc_id for d in docs] == ["a", "b"]
    assert [d.ordinal for d in docs] == [0, 1]
    assert docs[0].path == str(tmp_path / "a.txt") and docs[0].text is None
    assert src.count() == 2


def test_jsonl_custom_columns_context_and_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "notes.jsonl"
    lines = [
        json.dumps({"enc": "E1", "body": "first note", "ctx": {"setting": "inpatient", "age": 70}}),
        "",
        "{not json",
        json.dumps({"enc": 7, "body": "second note", "ctx": json.dumps({"sex": "F"})}),
        json.dumps({"enc": "E3", "body": 12}),
        json.dumps({"body": "no id"}),
    ]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = open_source(p, id_column="enc", text_column="body", context_column="ctx")
    docs = list(src)
    assert src.format == "jsonl" and src.count() == 5
    assert [d.ordinal for d in docs] == [0, 1, 2, 3, 4]
    assert docs[0].doc_id == "E1" and docs[0].text == "first note"
    assert docs[0].context == {"setting": "inpatient", "age": 70} and docs[0].error is None
    assert docs[1].doc_id == "notes.jsonl:line3" and "not valid JSON" in (docs[1].error or "")
    assert docs[2].doc_id == "7" and docs[2].context == {"sex": "F"}
    assert docs[3].doc_id == "E3" and "expected a string" in (docs[3].error or "")
    assert "no 'enc' value" in (docs[4].error or "")


def test_jsonl_missing_column_is_one_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "notes.jsonl"
    p.write_text(json.dumps({"id": "a", "note": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        open_source(p)
    assert "'text'" in str(exc.value) and "note" in str(exc.value)


def test_parquet_custom_columns(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"encounter": ["p1", "p2", None], "note_text": ["alpha", None, "gamma"], "other": [1, 2, 3]})
    p = tmp_path / "notes.parquet"
    pq.write_table(table, p)
    src = open_source(p, id_column="encounter", text_column="note_text")
    docs = list(src)
    assert src.format == "parquet" and src.count() == 3
    assert (docs[0].doc_id, docs[0].text, docs[0].error) == ("p1", "alpha", None)
    assert docs[1].doc_id == "p2" and "no 'note_text' value" in (docs[1].error or "")
    assert docs[2].doc_id == "notes.parquet:row2" and docs[2].error
    with pytest.raises(InputError) as exc:
        list(open_source(p, id_column="id", text_column="note_text"))
    assert "encounter" in str(exc.value)


def test_parquet_dataset_directory(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a"], "text": ["x"]}), tmp_path / "part-0.parquet")
    pq.write_table(pa.table({"id": ["b"], "text": ["y"]}), tmp_path / "part-1.parquet")
    src = open_source(tmp_path)
    assert src.format == "parquet"
    assert [(d.ordinal, d.doc_id) for d in src] == [(0, "a"), (1, "b")]


def test_missing_and_unknown_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        open_source(tmp_path / "nope")
    (tmp_path / "x.csv").write_text("id,text\n", encoding="utf-8")
    with pytest.raises(BatchConfigError):
        open_source(tmp_path / "x.csv")
