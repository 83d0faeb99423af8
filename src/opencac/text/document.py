"""The document model: the original text is never altered; every span keeps offsets."""

from __future__ import annotations

from dataclasses import dataclass, field

from opencac.errors import BinaryInputError, EmptyInputError, InputTooLargeError

#: Default upper bound on a single note (bytes); configurable by callers.
DEFAULT_MAX_NOTE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range ``[start, end)`` into ``Document.text``.

    Attributes:
        start: offset of the first character.
        end: offset one past the last character.
        label: what the span is (a section name, ``"sentence"``, a mention's term...).
    """

    start: int
    end: int
    label: str = ""

    def text_of(self, text: str) -> str:
        """Return the covered text of ``text``."""
        return text[self.start : self.end]


@dataclass(slots=True)
class Document:
    """A clinical note. ``text`` is the original, unchanged; derived layers hold offsets.

    Attributes:
        id: the document id (a CodiEsp file name without ``.txt``, an EHR document id...).
        text: the original text.
        sections: section spans (label = normalised section name, e.g. ``"history"``).
        sentences: sentence spans.
        meta: free metadata (source, encounter id...). Never logged.
        headings: the section headings' own spans ("Investigations:"; label = the section name).
    """

    id: str
    text: str
    sections: list[Span] = field(default_factory=list)
    sentences: list[Span] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)
    headings: list[Span] = field(default_factory=list)

    def section_at(self, offset: int) -> str:
        """Return the label of the section containing ``offset`` (``""`` if none)."""
        for s in self.sections:
            if s.start <= offset < s.end:
                return s.label
        return ""

    def sentence_index(self, offset: int) -> int:
        """Return the index in ``sentences`` of the sentence containing ``offset`` (-1 if none).

        Sentences are sorted and non-overlapping, so this is a binary search.
        """
        lo, hi = 0, len(self.sentences)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.sentences[mid].start <= offset:
                lo = mid + 1
            else:
                hi = mid
        i = lo - 1
        if i >= 0 and self.sentences[i].start <= offset < self.sentences[i].end:
            return i
        return -1

    def sentence_at(self, offset: int) -> Span | None:
        """Return the sentence span containing ``offset``, or ``None``."""
        i = self.sentence_index(offset)
        return self.sentences[i] if i >= 0 else None

    def line_at(self, offset: int) -> Span:
        """Return the line containing ``offset`` (label ``"line"``, end before the newline)."""
        lo = self.text.rfind("\n", 0, offset) + 1
        hi = self.text.find("\n", offset)
        return Span(lo, len(self.text) if hi < 0 else hi, "line")

    def span_text(self, span: Span) -> str:
        """Return the original text covered by ``span``."""
        return self.text[span.start : span.end]


def decode_utf8(data: bytes, name: str, expected: str, error: type[Exception] = BinaryInputError) -> str:
    """``data`` decoded as UTF-8 (a byte-order mark dropped), or one ``error`` saying that ``name``
    looks binary (NUL bytes) or is not valid UTF-8, and that ``expected`` was expected."""
    if b"\x00" in data:
        raise error(f"{name} looks binary (it contains NUL bytes); expected {expected}.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{name} is not valid UTF-8 (bad byte at offset {exc.start}); expected {expected}.") from None


def read_note_bytes(data: bytes, *, name: str = "input", max_bytes: int = DEFAULT_MAX_NOTE_BYTES) -> str:
    """Decode a note's bytes strictly, with one clear error for each kind of bad input.

    Args:
        data: the raw bytes.
        name: how to name the input in error messages (a file name, ``"stdin"``).
        max_bytes: the largest note accepted.

    Raises:
        InputTooLargeError: more than ``max_bytes``.
        BinaryInputError: NUL bytes or bytes that are not UTF-8.
        EmptyInputError: nothing but whitespace.
    """
    if len(data) > max_bytes:
        raise InputTooLargeError(
            f"{name} is {len(data):,} bytes; the largest note accepted is {max_bytes:,} bytes "
            "(set a higher limit with --max-bytes / OPENCAC_MAX_NOTE_BYTES)."
        )
    text = decode_utf8(data, name, "a UTF-8 text note")
    if not text.strip():
        raise EmptyInputError(f"{name} is empty; expected the text of a clinical note.")
    return text
