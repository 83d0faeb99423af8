"""``analyze``: a document with its sections and sentences, offsets into the original text."""

from __future__ import annotations

from opencac.nlp.sections import find_headings, find_sections
from opencac.nlp.sentences import split_sentences
from opencac.text.document import Document, Span

__all__ = ["analyze"]


def analyze(text: str, doc_id: str = "note") -> Document:
    """Segment a note into sections and sentences.

    The text is kept unchanged; every span is a ``[start, end)`` range into it, so
    ``doc.text[s.start:s.end]`` is always the span's text. A section heading ends a sentence
    (``"Assessment: pneumonia"`` gives the sentences ``"Assessment:"`` and ``"pneumonia"``).

    Args:
        text: the original note text.
        doc_id: the document id.

    Returns:
        The document with ``sections`` and ``sentences`` filled.
    """
    headings = find_headings(text)
    sections = find_sections(text, headings)
    breaks = [end for _, end, _ in headings] + [s.start for s in sections]
    sentences = split_sentences(text, breaks)
    return Document(id=doc_id, text=text, sections=sections, sentences=sentences,
                    headings=[Span(hs, he, label) for hs, he, label in headings])
