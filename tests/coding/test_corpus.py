"""Training corpora: CodiEsp layout and JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opencac.coding.corpus import CM, PCS, canon, corpus_hash, dotted, infer_system, load_corpus
from opencac.errors import CorpusError


def _split(tmp_path: Path) -> Path:
    d = tmp_path / "train"
    (d / "text_files_en").mkdir(parents=True)
    (d / "text_files_en" / "doc1.txt").write_text("Fever and chest X-ray.", encoding="utf-8")
    (d / "text_files_en" / "doc2.txt").write_text("Type 2 diabetes.", encoding="utf-8")
    (d / "trainD.tsv").write_text("doc1\tr50.9\ndoc2\te11.9\ndoc2\te11.9\n", encoding="utf-8")
    (d / "trainP.tsv").write_text("doc1\tbw03zzz\n", encoding="utf-8")
    return d


def test_codiesp_layout(tmp_path: Path) -> None:
    docs = load_corpus(_split(tmp_path))
    assert [d.id for d in docs] == ["doc1", "doc2"]
    assert docs[0].codes == {CM: ["r509"], PCS: ["bw03zzz"]}
    assert docs[1].codes == {CM: ["e119"], PCS: []}


def test_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl"
    rows = [{"id": "a", "text": "x", "codes": ["E11.9", "0DTJ4ZZ", "I10", {"code": "R509", "system": "icd10cm"}]},
            {"id": "b", "text": "y", "codes": []}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    docs = load_corpus([p])
    assert docs[0].codes == {CM: ["e119", "i10", "r509"], PCS: ["0dtj4zz"]}
    assert docs[1].codes == {CM: [], PCS: []}


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(CorpusError):
        load_corpus([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError):
        load_corpus([tmp_path / "empty"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(CorpusError):
        load_corpus([bad])


@pytest.mark.parametrize("where", ["note", "codes", "jsonl"])
@pytest.mark.parametrize("data, says", [(b"doc1\tr50.9\n\x00\x01", "looks binary"),
                                        ("doc1\tr50.9 caf\u00e9\n".encode("latin-1"), "not valid UTF-8")])
def test_unreadable_files_name_the_file(tmp_path: Path, where: str, data: bytes, says: str) -> None:
    """A binary or non-UTF-8 corpus file is one CorpusError that names it, not a decoding traceback."""
    if where == "jsonl":
        bad = tmp_path / "c.jsonl"
        bad.write_bytes(data)
        target = bad
    else:
        target = _split(tmp_path)
        bad = target / "text_files_en" / "doc2.txt" if where == "note" else target / "trainD.tsv"
        bad.write_bytes(data)
    with pytest.raises(CorpusError, match=says) as err:
        load_corpus([target])
    assert bad.name in str(err.value)


def test_windows_line_ends_read_as_before_and_bom_dropped(tmp_path: Path) -> None:
    d = _split(tmp_path)
    (d / "trainD.tsv").write_bytes(b"\xef\xbb\xbfdoc1\tr50.9\r\ndoc2\te11.9\r\n")
    (d / "text_files_en" / "doc1.txt").write_bytes(b"Fever.\r\nChest X-ray.")
    docs = load_corpus(d)
    assert docs[0].codes[CM] == ["r509"] and docs[1].codes[CM] == ["e119"]
    assert docs[0].text == "Fever.\nChest X-ray."


def test_code_forms() -> None:
    assert infer_system("E11.9") == CM and infer_system("i10") == CM
    assert infer_system("bw03zzz") == PCS and infer_system("bw20") == PCS
    with pytest.raises(CorpusError):
        infer_system("??")
    assert canon(" E11.9 ") == "e119"
    assert dotted("e119", CM) == "E11.9" and dotted("bw03zzz", PCS) == "BW03ZZZ" and dotted("r52", CM) == "R52"


def test_hash_changes_with_codes(tmp_path: Path) -> None:
    docs = load_corpus(_split(tmp_path))
    h1 = corpus_hash(docs)
    docs[0].codes[CM].append("r52")
    assert corpus_hash(docs) != h1


def test_evidence_offsets_of_the_original_are_carried_to_the_translation(tmp_path: Path) -> None:
    d = _split(tmp_path)
    (d / "text_files").mkdir()
    (d / "text_files" / "doc1.txt").write_text("Fiebre y radiografía de tórax.", encoding="utf-8")
    (d / "trainX.tsv").write_text("doc1\tDIAGNOSTICO\tr50.9\tFiebre\t0 6\n", encoding="utf-8")
    docs = load_corpus(d)
    spans = docs[0].evidence[CM]["r509"]
    assert spans and all(0 <= a < b <= len(docs[0].text) for a, b in spans)
    assert "Fever" in docs[0].text[spans[0][0]:spans[0][1]]  # the one sentence, placed in the English note
    assert not docs[1].evidence.get(CM)
    # a broken evidence file is one CorpusError naming it
    (d / "trainX.tsv").write_text("doc1\tDIAGNOSTICO\tr50.9\tFiebre\tzero six\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="trainX.tsv line 1"):
        load_corpus(d)
