"""Assemble the final batch output from committed chunks, deterministically.

The committed chunk files are merged by input ordinal (each is sorted), so the output
has every document exactly once, in input order, whatever the number of workers, the
runner (local or Ray) or how many times the run was interrupted.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opencac.batch.checkpoint import Ledger, read_chunk
from opencac.errors import BatchConfigError, DuplicateDocumentError

#: Output formats of the coded results.
OUTPUT_FORMATS = ("jsonl", "parquet")

#: Provisional automation threshold: a document counts as automatable when it has at
#: least one selected code, every selected code has confidence >= this value, and the
#: rules layer raised no error-severity edit. Used until ``opencac.routing`` provides
#: fitted per-system thresholds. Rows routed in the worker (``row["route"]``, from
#: ``opencac.routing.route`` with the run's policy) use that decision instead.
PROVISIONAL_AUTOMATION_THRESHOLD = 0.90

#: Parquet columns (nested structures are stored as JSON strings: their schema belongs
#: to the coding and rules layers and may grow).
PARQUET_COLUMNS = ("doc_id", "model", "dx_codes", "px_codes", "final_codes", "codeset", "context",
                   "diagnoses", "procedures", "warnings", "rules", "route")


@dataclass(slots=True)
class BatchSummary:
    """What a batch run produced (also written to ``summary.json``).

    Attributes:
        documents: documents in the input (distinct ids).
        coded: documents coded successfully.
        failures: documents that failed (see ``failures.jsonl``).
        duplicates: input records skipped because their doc id was already seen.
        codes: selected codes over all coded documents (diagnoses + procedures).
        suggestions: all ranked suggestions over all coded documents.
        automated: documents that would go straight through.
        automation_rate: ``automated / coded``.
        automation_basis: how ``automated`` was decided (routing policy or provisional rule).
        resumed_from: documents already done by an earlier (interrupted) run.
        elapsed_s: wall time of this run.
        docs_per_s: documents coded per second in this run.
        workers: worker count; runner: ``local`` | ``ray`` | ``inline``.
        peak_rss_mb_per_worker: the largest peak RSS seen in any worker (MiB).
        worker_cpu_s: CPU seconds the workers spent coding in this run (load-independent).
        cpu_ms_per_doc: ``worker_cpu_s`` per document coded in this run, in milliseconds.
        outputs: output files by kind.
    """

    documents: int = 0
    coded: int = 0
    failures: int = 0
    duplicates: int = 0
    codes: int = 0
    suggestions: int = 0
    automated: int = 0
    automation_rate: float = 0.0
    automation_basis: str = ""
    resumed_from: int = 0
    elapsed_s: float = 0.0
    docs_per_s: float = 0.0
    workers: int = 0
    runner: str = ""
    peak_rss_mb_per_worker: float = 0.0
    worker_cpu_s: float = 0.0
    cpu_ms_per_doc: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def merged_rows(ledger: Ledger) -> Iterator[tuple[int, str, str]]:
    """All committed rows, merged by input ordinal: ``(ordinal, status, json_line)``."""
    streams = [read_chunk(p) for p in ledger.chunk_files()]
    last: int | None = None
    for ordinal, status, body in heapq.merge(*streams, key=lambda r: r[0]):
        if ordinal == last:  # defensive: the ledger's primary key already forbids it
            continue
        last = ordinal
        yield ordinal, status, body


def _selected(suggestions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in suggestions if s.get("selected")]


def _final_codes(row: dict[str, Any]) -> list[str]:
    rules = row.get("rules") or {}
    final = rules.get("final_codes") if isinstance(rules, dict) else None
    if isinstance(final, list):
        return [f if isinstance(f, str) else str(f.get("code", "")) for f in final]
    return [s["code"] for s in _selected(row.get("diagnoses", [])) + _selected(row.get("procedures", []))]


def provisional_automated(row: dict[str, Any], threshold: float = PROVISIONAL_AUTOMATION_THRESHOLD) -> bool:
    """The provisional straight-through rule (see ``PROVISIONAL_AUTOMATION_THRESHOLD``)."""
    selected = _selected(row.get("diagnoses", [])) + _selected(row.get("procedures", []))
    if not selected or any(float(s.get("confidence", 0.0)) < threshold for s in selected):
        return False
    rules = row.get("rules") or {}
    edits = rules.get("edits", []) if isinstance(rules, dict) else []
    return not any(isinstance(e, dict) and e.get("severity") == "error" for e in edits)


class _AtomicFile:
    """A text file written line by line to ``NAME.tmp`` and renamed into place on commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.fh = self.tmp.open("w", encoding="utf-8", newline="\n")

    def write(self, line: str) -> None:
        self.fh.write(line)
        self.fh.write("\n")

    def commit(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.path)


class _ParquetSink:
    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.schema = pa.schema([
            ("doc_id", pa.string()), ("model", pa.string()),
            ("dx_codes", pa.list_(pa.string())), ("px_codes", pa.list_(pa.string())),
            ("final_codes", pa.list_(pa.string())),
            ("codeset", pa.string()), ("context", pa.string()), ("diagnoses", pa.string()),
            ("procedures", pa.string()), ("warnings", pa.list_(pa.string())), ("rules", pa.string()),
            ("route", pa.string()),
        ])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.buf: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        def js(v: Any) -> str:
            return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

        self.buf.append({
            "doc_id": row["doc_id"], "model": str(row.get("model", "")),
            "dx_codes": [s["code"] for s in row.get("diagnoses", [])],
            "px_codes": [s["code"] for s in row.get("procedures", [])],
            "final_codes": _final_codes(row),
            "codeset": js(row.get("codeset", {})), "context": js(row.get("context", {})),
            "diagnoses": js(row.get("diagnoses", [])), "procedures": js(row.get("procedures", [])),
            "warnings": [str(w) for w in row.get("warnings", [])], "rules": js(row.get("rules")),
            "route": js(row.get("route")),
        })
        if len(self.buf) >= 2048:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.writer.write_table(self.pa.Table.from_pylist(self.buf, schema=self.schema))
            self.buf = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def assemble(ledger: Ledger, out_dir: Path, *, output_format: str = "jsonl", tsv: bool = False) -> BatchSummary:
    """Write the final outputs from the committed chunks and count the summary figures.

    Outputs (each written to a temporary file, then renamed): ``results.jsonl`` or
    ``results.parquet`` (one record per coded document: every suggestion with its
    evidence, and the rules layer's output), ``failures.jsonl`` (doc id, error code,
    message), and with ``tsv`` CodiEsp-style ``D.tsv``/``P.tsv`` (``doc_id<TAB>code``,
    lowercase dotted, each document's ranked suggestions best first).

    Args:
        ledger: the run's checkpoint.
        out_dir: the output directory.
        output_format: ``jsonl`` or ``parquet``.
        tsv: also write the CodiEsp-style TSVs.

    Raises:
        BatchConfigError: unknown output format.
    """
    if output_format not in OUTPUT_FORMATS:
        raise BatchConfigError(f"unknown output format {output_format!r}.", options=OUTPUT_FORMATS)
    summary = BatchSummary()
    routed = provisional = 0
    res_path = out_dir / f"results.{output_format}"
    tmp_res = res_path.with_name(res_path.name + ".tmp")
    failures = _AtomicFile(out_dir / "failures.jsonl")
    d_file = _AtomicFile(out_dir / "D.tsv") if tsv else None
    p_file = _AtomicFile(out_dir / "P.tsv") if tsv else None
    jsonl_fh = tmp_res.open("w", encoding="utf-8", newline="\n") if output_format == "jsonl" else None
    sink = _ParquetSink(tmp_res) if output_format == "parquet" else None
    try:
        for _ordinal, status, body in merged_rows(ledger):
            if status != "ok":
                summary.failures += 1
                failures.write(body)
                continue
            row = json.loads(body)
            summary.coded += 1
            dx, px = row.get("diagnoses", []), row.get("procedures", [])
            summary.suggestions += len(dx) + len(px)
            summary.codes += len(_selected(dx)) + len(_selected(px))
            route = row.get("route")
            if isinstance(route, dict):  # decided in the worker by opencac.routing.route
                routed += 1
                summary.automated += int(route.get("route") == "straight_through")
            else:
                provisional += 1
                summary.automated += int(provisional_automated(row))
            if jsonl_fh is not None:
                jsonl_fh.write(body)
                jsonl_fh.write("\n")
            elif sink is not None:
                sink.add(row)
            if d_file is not None and p_file is not None:
                for s in dx:
                    d_file.write(f"{row['doc_id']}\t{s['code'].lower()}")
                for s in px:
                    p_file.write(f"{row['doc_id']}\t{s['code'].lower()}")
    finally:
        if jsonl_fh is not None:
            jsonl_fh.flush()
            os.fsync(jsonl_fh.fileno())
            jsonl_fh.close()
        if sink is not None:
            sink.close()
    os.replace(tmp_res, res_path)
    for ordinal, doc_id in ledger.duplicates():
        summary.duplicates += 1
        failures.write(json.dumps({
            "doc_id": doc_id, "error_code": DuplicateDocumentError.code, "error_type": "DuplicateDocumentError",
            "error": f"input record {ordinal} repeats doc id {doc_id!r}; only its first occurrence is coded",
        }, ensure_ascii=False, separators=(",", ":")))
    failures.commit()
    summary.outputs = {"results": str(res_path), "failures": str(failures.path)}
    if d_file is not None and p_file is not None:
        d_file.commit()
        p_file.commit()
        summary.outputs |= {"tsv_d": str(d_file.path), "tsv_p": str(p_file.path)}
    summary.documents = summary.coded + summary.failures
    if provisional == 0:
        summary.automation_basis = "opencac.routing: share routed straight_through by the routing policy"
    else:
        summary.automation_basis = (
            f"provisional for {provisional} document(s): all selected codes confidence >= "
            f"{PROVISIONAL_AUTOMATION_THRESHOLD:.2f} and no error edits")
    summary.automation_rate = summary.automated / summary.coded if summary.coded else 0.0
    return summary
