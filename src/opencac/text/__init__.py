"""Documents, sections and spans with character offsets into the original text."""

from opencac.text.document import Document, Span, read_note_bytes

__all__ = ["Document", "Span", "read_note_bytes"]
