"""Document and Span: the original text is never altered; offsets round-trip."""

from __future__ import annotations

import pytest

from opencac.errors import BinaryInputError, EmptyInputError, InputTooLargeError
from opencac.text import Document, Span, read_note_bytes

TEXT = "Assessment: pneumonia.\nPlan: antibiotics. Review."


def _doc() -> Document:
    return Document(
        id="n1",
        text=TEXT,
        sections=[Span(0, 22, "assessment"), Span(23, len(TEXT), "plan")],
        sentences=[Span(0, 11, "sentence"), Span(12, 22, "sentence"), Span(23, 28, "sentence"),
                   Span(29, 41, "sentence"), Span(42, 49, "sentence")],
    )


def test_span_text_round_trip() -> None:
    doc = _doc()
    assert [doc.span_text(s) for s in doc.sentences] == [
        "Assessment:", "pneumonia.", "Plan:", "antibiotics.", "Review."]
    assert Span(12, 21).text_of(TEXT) == "pneumonia"


def test_section_and_sentence_lookup() -> None:
    doc = _doc()
    assert doc.section_at(TEXT.index("pneumonia")) == "assessment"
    assert doc.section_at(TEXT.index("antibiotics")) == "plan"
    assert doc.section_at(len(TEXT) + 5) == ""
    assert doc.sentence_index(TEXT.index("pneumonia")) == 1
    assert doc.sentence_index(TEXT.index("Review")) == 4
    assert doc.sentence_index(11) == -1  # the space between two sentences
    assert doc.sentence_at(0) == Span(0, 11, "sentence")
    assert doc.sentence_at(-1) is None
    assert Document(id="x", text="abc").sentence_index(1) == -1


def test_line_at() -> None:
    doc = _doc()
    line = doc.line_at(TEXT.index("antibiotics"))
    assert doc.span_text(line) == "Plan: antibiotics. Review."
    assert doc.span_text(doc.line_at(0)) == "Assessment: pneumonia."


def test_read_note_bytes_ok_and_bom() -> None:
    assert read_note_bytes("Fiebre.\n".encode()) == "Fiebre.\n"
    assert read_note_bytes(b"\xef\xbb\xbfNote") == "Note"


@pytest.mark.parametrize(
    ("data", "error"),
    [(b"", EmptyInputError), (b"  \n\t", EmptyInputError), (b"a\x00b", BinaryInputError),
     (b"\xff\xfe\xfa", BinaryInputError)],
)
def test_read_note_bytes_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as exc:
        read_note_bytes(data, name="note.txt")
    assert "note.txt" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_read_note_bytes_too_large() -> None:
    with pytest.raises(InputTooLargeError):
        read_note_bytes(b"x" * 101, max_bytes=100)
