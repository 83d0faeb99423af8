"""Batch input readers: a directory of ``.txt`` notes, a JSONL file, or a Parquet table.

Every reader yields :class:`SourceDoc` records in a stable input order; the position in
that order (``ordinal``) is what makes the final output deterministic and resumable.
Readers never decode or validate note text: that happens in the worker, so a bad
document becomes a recorded failure instead of stopping the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opencac.errors import BatchConfigError, InputError, InputNotFoundError

#: Input formats understood by :func:`open_source`.
INPUT_FORMATS = ("txt-dir", "jsonl", "parquet")

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """One input document, not yet decoded.

    Attributes:
        ordinal: 0-based position in the input (stable between runs on the same input).
        doc_id: the document id (file stem, or the id column).
        text: the note text (JSONL/Parquet inputs); ``None`` when ``path`` is set.
        path: the note file (directory inputs), read by the worker.
        context: an encounter context as a JSON-ready dict, when the input carries one.
        error: a reader-level problem with this record (bad JSON line, missing text...).
        data: the note file's bytes, when read ahead by the driver (Ray runs ship bytes,
            since cluster nodes may not see the driver's files); ``path`` still names it.
    """

    ordinal: int
    doc_id: str
    text: str | None = None
    path: str | None = None
    context: dict[str, Any] | None = None
    error: str | None = None
    data: bytes | None = None


@dataclass(slots=True)
class DocumentSource:
    """A batch input: where it is, its format and the columns to read.

    Use :func:`open_source` to build one; iterate it for :class:`SourceDoc` records.

    Attributes:
        path: the input file or directory.
        format: one of ``INPUT_FORMATS``.
        id_column: JSONL/Parquet column holding the document id.
        text_column: JSONL/Parquet column holding the note text.
        context_column: optional column holding an encounter context (dict or JSON string).
    """

    path: Path
    format: str
    id_column: str = "id"
    text_column: str = "text"
    context_column: str = "context"

    def __iter__(self) -> Iterator[SourceDoc]:
        if self.format == "txt-dir":
            return self._iter_dir()
        if self.format == "jsonl":
            return self._iter_jsonl()
        return self._iter_parquet()

    def count(self) -> int:
        """Number of records the input will yield (cheap: a listing, a line count or metadata)."""
        if self.format == "txt-dir":
            return len(self._txt_files())
        if self.format == "jsonl":
            n = 0
            with self.path.open("rb") as fh:
                for line in fh:
                    if line.strip():
                        n += 1
            return n
        return sum(pf.metadata.num_rows for pf in self._parquet_files())

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this input for a checkpoint (path, format, columns, size, mtime)."""
        st = self.path.stat()
        fp: dict[str, Any] = {
            "path": str(self.path.resolve()),
            "format": self.format,
            "id_column": self.id_column,
            "text_column": self.text_column,
        }
        if self.format == "txt-dir":
            fp["files"] = len(self._txt_files())
        else:
            fp["size"] = st.st_size if self.path.is_file() else None
            fp["mtime_ns"] = st.st_mtime_ns
        return fp

    # -- directory of .txt ----------------------------------------------------------------
    def _txt_files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.suffix == ".txt" and p.is_file())

    def _iter_dir(self) -> Iterator[SourceDoc]:
        for i, p in enumerate(self._txt_files()):
            yield SourceDoc(ordinal=i, doc_id=p.stem, path=str(p))

    # -- JSONL ----------------------------------------------------------------------------
    def _iter_jsonl(self) -> Iterator[SourceDoc]:
        ordinal = 0
        with self.path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                yield self._from_record(ordinal, lineno, raw)
                ordinal += 1

    def _from_record(self, ordinal: int, lineno: int, raw: bytes) -> SourceDoc:
        fallback_id = f"{self.path.name}:line{lineno}"
        try:
            rec = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return SourceDoc(ordinal, fallback_id, error=f"line {lineno} is not valid JSON ({exc.__class__.__name__})")
        if not isinstance(rec, dict):
            return SourceDoc(ordinal, fallback_id, error=f"line {lineno} is not a JSON object")
        return self._from_values(ordinal, rec.get(self.id_column), rec.get(self.text_column),
                                 rec.get(self.context_column), fallback_id, f"line {lineno}")

    def _from_values(self, ordinal: int, doc_id: Any, text: Any, context: Any,
                     fallback_id: str, where: str) -> SourceDoc:
        if doc_id is None or (isinstance(doc_id, str) and not doc_id.strip()):
            return SourceDoc(ordinal, fallback_id, error=f"{where} has no '{self.id_column}' value")
        did = str(doc_id)
        if text is None:
            return SourceDoc(ordinal, did, error=f"{where} has no '{self.text_column}' value")
        if not isinstance(text, str):
            return SourceDoc(ordinal, did, error=f"{where}: '{self.text_column}' is a {type(text).__name__}, expected a string")
        ctx: dict[str, Any] | None = None
        if context is not None:
            if isinstance(context, str):
                try:
                    context = json.loads(context) if context.strip() else None
                except json.JSONDecodeError:
                    return SourceDoc(ordinal, did, error=f"{where}: '{self.context_column}' is not valid JSON")
            if context is not None and not isinstance(context, dict):
                return SourceDoc(ordinal, did, error=f"{where}: '{self.context_column}' is not an object")
            ctx = context
        return SourceDoc(ordinal, did, text=text, context=ctx)

    # -- Parquet --------------------------------------------------------------------------
    def _parquet_files(self) -> list[Any]:
        import pyarrow.parquet as pq

        files = (sorted(p for p in self.path.rglob("*") if p.suffix in _PARQUET_SUFFIXES)
                 if self.path.is_dir() else [self.path])
        out = []
        for f in files:
            try:
                out.append(pq.ParquetFile(f))
            except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses
                raise InputError(f"{f} is not a readable Parquet file ({exc.__class__.__name__}).") from None
        return out

    def _iter_parquet(self) -> Iterator[SourceDoc]:
        ordinal = 0
        for pf in self._parquet_files():
            names = pf.schema_arrow.names
            for col in (self.id_column, self.text_column):
                if col not in names:
                    raise InputError(
                        f"column '{col}' not found in {self.path.name}; set --id-column/--text-column.",
                        options=names,
                    )
            cols = [self.id_column, self.text_column]
            has_ctx = self.context_column in names
            if has_ctx:
                cols.append(self.context_column)
            row_in_file = 0
            for batch in pf.iter_batches(batch_size=1024, columns=cols):
                data = batch.to_pydict()
                ctxs = data[self.context_column] if has_ctx else [None] * batch.num_rows
                for did, text, ctx in zip(data[self.id_column], data[self.text_column], ctxs, strict=True):
                    yield self._from_values(ordinal, did, text, ctx, f"{self.path.name}:row{row_in_file}",
                                            f"row {row_in_file}")
                    ordinal += 1
                    row_in_file += 1


def open_source(src: str | os.PathLike[str], *, id_column: str = "id", text_column: str = "text",
                context_column: str = "context", input_format: str | None = None) -> DocumentSource:
    """Open a batch input, detecting its format from the path.

    A directory holding ``.txt`` files is a note directory (doc id = file stem); a directory
    holding only ``.parquet`` files is a Parquet dataset; ``.jsonl``/``.ndjson``/``.json``
    files are JSON Lines (one object per line); ``.parquet``/``.pq`` files are Parquet.

    Args:
        src: the input path.
        id_column: JSONL/Parquet field with the document id.
        text_column: JSONL/Parquet field with the note text.
        context_column: optional field with an encounter context (object or JSON string).
        input_format: force one of ``INPUT_FORMATS`` instead of detecting it.

    Raises:
        InputNotFoundError: the path does not exist.
        BatchConfigError: the format cannot be detected or is unknown.
        InputError: a JSONL file whose first record lacks the id or text column.
    """
    path = Path(src)
    if not path.exists():
        raise InputNotFoundError(f"batch input {path} does not exist; expected a directory of .txt notes, "
                                 "a .jsonl file or a .parquet table.")
    fmt = input_format
    if fmt is None:
        if path.is_dir():
            has_txt = any(p.suffix == ".txt" for p in path.iterdir())
            has_pq = any(p.suffix in _PARQUET_SUFFIXES for p in path.rglob("*"))
            fmt = "parquet" if (has_pq and not has_txt) else "txt-dir"
        elif path.suffix.lower() in _JSONL_SUFFIXES:
            fmt = "jsonl"
        elif path.suffix.lower() in _PARQUET_SUFFIXES:
            fmt = "parquet"
        else:
            raise BatchConfigError(f"cannot tell the format of batch input {path.name} from its name.",
                                   options=[".txt directory", *_JSONL_SUFFIXES, *_PARQUET_SUFFIXES])
    if fmt not in INPUT_FORMATS:
        raise BatchConfigError(f"unknown input format {fmt!r}.", options=INPUT_FORMATS)
    source = DocumentSource(path, fmt, id_column, text_column, context_column)
    if fmt == "jsonl":
        _check_jsonl_columns(source)
    return source


def _check_jsonl_columns(source: DocumentSource) -> None:
    """Fail early, with the available field names, when the first record lacks a column."""
    with source.path.open("rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                return  # recorded per line as a failure
            if isinstance(rec, dict):
                for col in (source.id_column, source.text_column):
                    if col not in rec:
                        raise InputError(
                            f"field '{col}' not found in the first record of {source.path.name}; "
                            "set --id-column/--text-column.",
                            options=sorted(rec),
                        )
            return
