"""Checkpoints that make a batch run resumable and exactly-once.

Layout under the output directory::

    _checkpoint/ledger.sqlite        settings, committed chunks and every finished doc id
    _checkpoint/chunks/c000017.jsonl one file per committed chunk (sorted by input ordinal)

The protocol (single writer: the driver process):

1. a chunk's lines are written to ``c000017.jsonl.tmp``, flushed and fsynced;
2. the file is renamed to ``c000017.jsonl`` (atomic) and the directory fsynced;
3. one SQLite transaction records the chunk and each of its doc ids (``doc_id`` is the
   primary key, so a document can never be recorded twice).

A kill between 1 and 3 leaves a chunk file that the ledger does not know: on resume it
is deleted and its documents, not being in the ledger, are coded again. A kill after 3
loses nothing. The ledger is therefore the only truth about what is done.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from opencac.errors import CheckpointError

CHECKPOINT_DIR = "_checkpoint"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (seq INTEGER PRIMARY KEY, file TEXT NOT NULL, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY, ordinal INTEGER NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS duplicates (ordinal INTEGER PRIMARY KEY, doc_id TEXT NOT NULL);
"""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write lines to ``path`` via a fsynced temporary file and an atomic rename."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line)
            fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _lock(path: Path, out_dir: Path) -> Any:
    """Hold an exclusive lock on ``path`` for the life of the run (released by the OS when
    the process dies, so a killed run never leaves a stale lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        return None
    fh = path.open("a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise CheckpointError(f"another batch run is using {out_dir}; wait for it to finish or choose "
                              "another --out.") from None
    return fh


class Ledger:
    """The checkpoint of one batch output directory.

    Args:
        out_dir: the batch output directory (the checkpoint lives in ``_checkpoint/``).
    """

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir / CHECKPOINT_DIR
        self.chunk_dir = self.root / "chunks"
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh = _lock(self.root / "lock", out_dir)
        try:
            self.db = sqlite3.connect(self.root / "ledger.sqlite", isolation_level=None)
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise CheckpointError(f"the checkpoint ledger in {self.root} is unreadable ({exc}); "
                                  "start again with --restart.") from None

    @staticmethod
    def exists(out_dir: Path) -> bool:
        """Whether ``out_dir`` holds a checkpoint."""
        return (out_dir / CHECKPOINT_DIR / "ledger.sqlite").is_file()

    @staticmethod
    def remove(out_dir: Path) -> None:
        """Delete the checkpoint of ``out_dir`` (for ``--restart``).

        Raises:
            CheckpointError: another run is using ``out_dir``.
        """
        root = out_dir / CHECKPOINT_DIR
        fh = _lock(root / "lock", out_dir) if (root / "lock").exists() else None
        try:
            shutil.rmtree(root, ignore_errors=True)
        finally:
            if fh is not None:
                fh.close()

    def close(self) -> None:
        """Close the ledger database and release the run lock."""
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    # -- settings ------------------------------------------------------------------------
    def check_settings(self, settings: dict[str, Any]) -> None:
        """Store the run settings on first use; refuse to resume with different ones.

        Raises:
            CheckpointError: the checkpoint was made with other settings.
        """
        row = self.db.execute("SELECT value FROM meta WHERE key='settings'").fetchone()
        wanted = json.dumps(settings, sort_keys=True)
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('settings', ?)", (wanted,))
            return
        stored = json.loads(row[0])
        if stored != settings:
            diff = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
            raise CheckpointError(
                f"the checkpoint in {self.root.parent} was made with different settings ({', '.join(diff)}); "
                "resume with the same input/model/rules, or use --restart to start over."
            )

    # -- recovery ------------------------------------------------------------------------
    def recover(self) -> None:
        """Delete chunk files the ledger does not know (a kill between rename and commit)."""
        known = {r[0] for r in self.db.execute("SELECT file FROM chunks")}
        for p in self.chunk_dir.iterdir():
            if p.name not in known:
                p.unlink(missing_ok=True)
        missing = [f for f in known if not (self.chunk_dir / f).is_file()]
        if missing:
            raise CheckpointError(f"{len(missing)} committed chunk file(s) are missing from {self.chunk_dir} "
                                  f"(e.g. {missing[0]}); the checkpoint is damaged: use --restart.")

    def done_ids(self) -> set[str]:
        """Every doc id already committed (coded or failed)."""
        return {r[0] for r in self.db.execute("SELECT doc_id FROM docs")}

    def duplicate_ordinals(self) -> set[int]:
        """Input ordinals already recorded as duplicate ids."""
        return {r[0] for r in self.db.execute("SELECT ordinal FROM duplicates")}

    def next_seq(self) -> int:
        """The next free chunk number."""
        row = self.db.execute("SELECT COALESCE(MAX(seq), -1) FROM chunks").fetchone()
        return int(row[0]) + 1

    # -- commit --------------------------------------------------------------------------
    def commit_chunk(self, seq: int, rows: list[tuple[int, str, str, str]]) -> None:
        """Durably record one chunk: write its file atomically, then commit its doc ids.

        Args:
            seq: the chunk number (from :meth:`next_seq`, increasing).
            rows: ``(ordinal, doc_id, status, json_line)`` per document.

        Raises:
            CheckpointError: a doc id of the chunk is already committed.
        """
        rows = sorted(rows)
        name = f"c{seq:07d}.jsonl"
        atomic_write_lines(self.chunk_dir / name,
                           (json.dumps([o, s], separators=(",", ":")) + "\t" + line for o, _d, s, line in rows))
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO chunks VALUES (?, ?, ?)", (seq, name, len(rows)))
            self.db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", [(d, o, seq, s) for o, d, s, _ in rows])
            self.db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            self.db.execute("ROLLBACK")
            (self.chunk_dir / name).unlink(missing_ok=True)
            raise CheckpointError(f"chunk {seq} repeats a document that is already committed ({exc}).") from None

    def record_duplicates(self, dups: list[tuple[int, str]]) -> None:
        """Record input ordinals whose doc id was already seen (they are not coded)."""
        if dups:
            self.db.executemany("INSERT OR IGNORE INTO duplicates VALUES (?, ?)", dups)

    # -- reading back --------------------------------------------------------------------
    def chunk_files(self) -> list[Path]:
        """Committed chunk files, in commit order."""
        return [self.chunk_dir / r[0] for r in self.db.execute("SELECT file FROM chunks ORDER BY seq")]

    def duplicates(self) -> list[tuple[int, str]]:
        """``(ordinal, doc_id)`` of every duplicate input record."""
        return list(self.db.execute("SELECT ordinal, doc_id FROM duplicates ORDER BY ordinal"))

    def counts(self) -> dict[str, int]:
        """Committed documents by status (``ok``/``failed``)."""
        return {s: n for s, n in self.db.execute("SELECT status, COUNT(*) FROM docs GROUP BY status")}


def read_chunk(path: Path) -> Iterator[tuple[int, str, str]]:
    """Yield ``(ordinal, status, json_line)`` from one committed chunk file."""
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            head, _, body = line.rstrip("\n").partition("\t")
            ordinal, status = json.loads(head)
            yield int(ordinal), str(status), body
