"""Run a batch: read the input, code chunks on workers, checkpoint, assemble the output.

``run_batch`` is the one entry point (the CLI is a thin wrapper over it). The driver
process is the single writer of the checkpoint; workers (local processes or Ray actors)
only code documents and return JSON lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opencac.batch.checkpoint import Ledger, atomic_write_lines
from opencac.batch.readers import DocumentSource, SourceDoc, open_source
from opencac.batch.worker import ChunkResult, DocumentCoder, Engine, EngineFactory, dumps, init_worker, run_chunk
from opencac.batch.writers import OUTPUT_FORMATS, BatchSummary, assemble
from opencac.errors import BatchConfigError, InputNotFoundError, WorkerCrashError
from opencac.text.document import DEFAULT_MAX_NOTE_BYTES

#: Most coded rows held in the driver before a commit, whatever the interval.
_MAX_BUFFER = 4096

#: Progress callback: ``(documents done, total documents in the input)``.
ProgressFn = Callable[[int, int], None]


@dataclass(slots=True)
class BatchConfig:
    """Settings of a batch run.

    Attributes:
        input: a directory of ``.txt`` notes, a JSONL file, or a Parquet file/dataset.
        out: the output directory (results, failures, TSVs, summary and the checkpoint).
        model: the model to load in each worker (``None`` = out-of-the-box engine).
        workers: worker processes (Ray: actors); ``0`` codes in the driver process.
        ray: ``None`` for local processes, ``"local"`` to start a local Ray instance with
            ``num_cpus=workers``, or a Ray cluster address (``"ray://head:10001"``, ``"auto"``).
        output_format: ``jsonl`` or ``parquet``.
        tsv: also write CodiEsp-style ``D.tsv``/``P.tsv``.
        id_column / text_column / context_column: JSONL/Parquet field names.
        rules: run the rules layer (``opencac.edits.apply_rules``) on every result.
        resume: continue from the checkpoint in ``out`` (``False``: discard it, start over).
        chunk_size: documents per checkpointed chunk.
        max_bytes: largest note accepted (bigger ones are recorded as failures).
        routing_policy: a routing policy file (``opencac.routing``) for the automation rate.
        engine_factory: picklable callable returning an engine in each worker; default
            ``EngineFactory(model)``. Tests pass light fakes here.
        ray_wave: documents handed to Ray Data per dataset (bounds driver memory).
        ray_batch_size: smallest batch of documents one Ray actor codes per task (the larger of
            this and ``chunk_size``): Ray Data's per-batch overhead on the driver, raylet and
            actors made 2 actors only 1.5x faster than 1 with 16-document batches, about 2x with
            64 (bench/RESULTS-batch.md). Each batch is committed to the checkpoint as one chunk.
        checkpoint_interval_s: coded chunks arriving within this many seconds are committed
            together (one fsynced file + one ledger transaction); ``0`` commits each chunk.
        doc_timeout_s: a document still coding after this many seconds is abandoned and
            recorded as a failure (``0`` = no limit).
    """

    input: Path
    out: Path
    model: str | None = None
    workers: int = 1
    ray: str | None = None
    output_format: str = "jsonl"
    tsv: bool = False
    id_column: str = "id"
    text_column: str = "text"
    context_column: str = "context"
    rules: bool = True
    resume: bool = True
    chunk_size: int = 16
    max_bytes: int = DEFAULT_MAX_NOTE_BYTES
    routing_policy: Path | None = None
    engine_factory: Callable[[], Engine] | None = field(default=None, repr=False)
    ray_wave: int = 20_000
    ray_batch_size: int = 64
    checkpoint_interval_s: float = 0.5
    doc_timeout_s: float = 300.0

    def validate(self) -> None:
        """Raise ``BatchConfigError`` for settings that cannot work."""
        if self.workers < 0:
            raise BatchConfigError(f"--workers must be 0 or more, got {self.workers}.")
        if self.ray is not None and self.workers < 1:
            raise BatchConfigError("--ray needs --workers of 1 or more (one actor per worker).")
        if self.checkpoint_interval_s < 0:
            raise BatchConfigError(f"checkpoint interval must be 0 or more seconds, got {self.checkpoint_interval_s}.")
        if self.doc_timeout_s < 0:
            raise BatchConfigError(f"document timeout must be 0 or more seconds, got {self.doc_timeout_s}.")
        if self.chunk_size < 1:
            raise BatchConfigError(f"chunk size must be 1 or more, got {self.chunk_size}.")
        if self.ray_batch_size < 1:
            raise BatchConfigError(f"Ray batch size must be 1 or more, got {self.ray_batch_size}.")
        if self.output_format not in OUTPUT_FORMATS:
            raise BatchConfigError(f"unknown output format {self.output_format!r}.", options=OUTPUT_FORMATS)
        if self.routing_policy is not None and not Path(self.routing_policy).is_file():
            raise InputNotFoundError(f"routing policy {self.routing_policy} does not exist.")

    def settings(self, source: DocumentSource, policy: dict[str, Any] | None = None) -> dict[str, Any]:
        """What must not change between a run and its resumption."""
        pol = hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()[:16] if policy else None
        return {"input": source.fingerprint(), "model": self.model, "rules": self.rules,
                "engine": _factory_name(self.engine_factory), "routing_policy": pol}


def _factory_name(factory: Any) -> str:
    if factory is None:
        return "opencac.batch.worker.EngineFactory"
    return f"{type(factory).__module__}.{type(factory).__qualname__}:{factory!r}"


class _Pending:
    """Walks the input once, skipping what the ledger has, flagging duplicate ids."""

    def __init__(self, source: Iterable[SourceDoc], ledger: Ledger) -> None:
        self.source = source
        self.done: dict[str, int] = dict(ledger.db.execute("SELECT doc_id, ordinal FROM docs"))
        self.dup_done = ledger.duplicate_ordinals()
        self.new_duplicates: list[tuple[int, str]] = []
        self.skipped = 0

    def __iter__(self) -> Iterator[SourceDoc]:
        seen: set[str] = set()
        for doc in self.source:
            first = self.done.get(doc.doc_id)
            if first == doc.ordinal or doc.ordinal in self.dup_done:
                self.skipped += 1
                continue
            if first is not None or doc.doc_id in seen:
                self.new_duplicates.append((doc.ordinal, doc.doc_id))
                continue
            seen.add(doc.doc_id)
            yield doc


def _chunks(docs: Iterable[SourceDoc], size: int) -> Iterator[list[SourceDoc]]:
    buf: list[SourceDoc] = []
    for d in docs:
        buf.append(d)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _raise_fatal(result: ChunkResult) -> None:
    if result.fatal is None:
        return
    import opencac.errors as errors

    cls_name, message = result.fatal
    cls = getattr(errors, cls_name, None)
    if isinstance(cls, type) and issubclass(cls, errors.OpenCACError):
        raise cls(message)
    raise BatchConfigError(f"the workers could not load the engine: {message}")


def _run_inline(chunks: Iterable[list[SourceDoc]], cfg: BatchConfig, factory: Callable[[], Engine],
                policy: dict[str, Any] | None) -> Iterator[ChunkResult]:
    coder = DocumentCoder(factory, rules=cfg.rules, max_bytes=cfg.max_bytes, routing_policy=policy,
                          doc_timeout_s=cfg.doc_timeout_s)
    for chunk in chunks:
        yield coder.code_chunk(chunk)


def _crash_result(doc: SourceDoc) -> ChunkResult:
    row = {"doc_id": doc.doc_id, "error_code": WorkerCrashError.code, "error_type": "WorkerCrashError",
           "error": "the worker process died while coding this document (a crash or out of memory); "
                    "it was retried alone and died again"}
    return ChunkResult([(doc.ordinal, doc.doc_id, "failed", dumps(row))], 0, 0)


def _run_local(chunks: Iterable[list[SourceDoc]], cfg: BatchConfig, factory: Callable[[], Engine],
               policy: dict[str, Any] | None) -> Iterator[ChunkResult]:
    """Code chunks on a process pool with at most ``2 * workers`` chunks in flight.

    A worker process that dies (segfault, out-of-memory kill) breaks the pool: the chunks in
    flight are then retried one document at a time on a fresh pool, so the document that
    kills its worker is recorded as a failure and every other document is still coded.
    """
    import multiprocessing as mp

    # spawn: safe with the driver's threads (progress bar, SQLite) and the same on every OS.
    ctx = mp.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx, initializer=init_worker,
                                   initargs=(factory, cfg.rules, cfg.max_bytes, policy, cfg.doc_timeout_s))

    in_flight: dict[Future[ChunkResult], list[SourceDoc]] = {}
    suspects: deque[SourceDoc] = deque()
    isolated: Future[ChunkResult] | None = None
    limit = 2 * cfg.workers
    it = iter(chunks)
    pool = new_pool()
    try:
        exhausted = False
        while True:
            if suspects:
                # Isolation mode: one suspect document at a time, nothing else in flight,
                # so a crash now is that document's.
                if not in_flight:
                    doc = suspects.popleft()
                    isolated = pool.submit(run_chunk, [doc])
                    in_flight[isolated] = [doc]
            else:
                while not exhausted and len(in_flight) < limit:
                    chunk = next(it, None)
                    if chunk is None:
                        exhausted = True
                        break
                    in_flight[pool.submit(run_chunk, chunk)] = chunk
            if not in_flight:
                break
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken: list[list[SourceDoc]] = []
            crashed_alone: SourceDoc | None = None
            for fut in finished:
                chunk = in_flight.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    if fut is isolated:
                        crashed_alone = chunk[0]
                    else:
                        broken.append(chunk)
                    continue
                yield res
            if broken or crashed_alone is not None:
                # Every other future of the dead pool fails too: collect them all.
                for fut in list(in_flight):
                    chunk = in_flight.pop(fut)
                    try:
                        yield fut.result()
                    except BrokenProcessPool:
                        broken.append(chunk)
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
                if crashed_alone is not None:
                    yield _crash_result(crashed_alone)
                for chunk in broken:
                    suspects.extend(chunk)
                suspects = deque(sorted(suspects, key=lambda d: d.ordinal))
    finally:
        for fut in in_flight:
            fut.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def run_batch(cfg: BatchConfig, progress: ProgressFn | None = None) -> BatchSummary:
    """Code every document of ``cfg.input`` exactly once into ``cfg.out``; resumable.

    Args:
        cfg: the run settings.
        progress: called after each checkpoint commit with ``(done, total)``.

    Returns:
        The summary (also written to ``OUT/summary.json``).

    Raises:
        BatchConfigError: impossible settings.
        CheckpointError: the checkpoint in ``out`` was made with other settings or is damaged.
        InputNotFoundError / InputError: the input cannot be read.
    """
    cfg.validate()
    t0 = time.perf_counter()
    source = open_source(cfg.input, id_column=cfg.id_column, text_column=cfg.text_column,
                         context_column=cfg.context_column)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        Ledger.remove(out)
        for name in ("results.jsonl", "results.parquet", "failures.jsonl", "D.tsv", "P.tsv", "summary.json"):
            (out / name).unlink(missing_ok=True)
    policy = _load_policy(cfg.routing_policy)
    ledger = Ledger(out)
    try:
        ledger.check_settings(cfg.settings(source, policy))
        ledger.recover()
        total = source.count()
        pending = _Pending(source, ledger)
        already = len(pending.done) + len(pending.dup_done)
        factory = cfg.engine_factory or EngineFactory(cfg.model)
        done = already
        if progress:
            progress(done, total)
        # On Ray a chunk is one Ray batch (at least ``ray_batch_size`` documents): with smaller
        # chunks the driver assembles and commits more, smaller pieces (bench/RESULTS-batch.md).
        size = max(cfg.chunk_size, cfg.ray_batch_size) if cfg.ray is not None else cfg.chunk_size
        chunks = _chunks(pending, size)
        if cfg.ray is not None:
            from opencac.batch.ray_runner import run_ray

            results: Iterator[ChunkResult] = run_ray(chunks, cfg, factory, policy)
            runner = "ray"
        elif cfg.workers == 0:
            results, runner = _run_inline(chunks, cfg, factory, policy), "inline"
        else:
            results, runner = _run_local(chunks, cfg, factory, policy), "local"
        peak_kb = 0
        coded_now = 0
        cpu_s = 0.0
        seq = ledger.next_seq()
        # Group commit: a commit costs a few fsyncs (~tens of ms) whatever its size, so
        # results that arrive within ``checkpoint_interval_s`` share one. Rows not yet
        # committed when the run is killed are simply coded again on resume.
        buffer: list[tuple[int, str, str, str]] = []
        last_commit = time.perf_counter()

        def commit() -> None:
            nonlocal seq, done, buffer, last_commit
            ledger.record_duplicates(pending.new_duplicates)
            done += len(pending.new_duplicates)
            pending.new_duplicates = []
            if buffer:
                ledger.commit_chunk(seq, buffer)
                seq += 1
                done += len(buffer)
                buffer = []
            last_commit = time.perf_counter()
            if progress:
                progress(done, total)

        try:
            for res in results:
                _raise_fatal(res)
                buffer.extend(res.rows)
                coded_now += len(res.rows)
                cpu_s += res.cpu_s
                peak_kb = max(peak_kb, res.max_rss_kb)
                if time.perf_counter() - last_commit >= cfg.checkpoint_interval_s or len(buffer) >= _MAX_BUFFER:
                    commit()
        except BaseException:
            # Keep what is already coded (complete rows) before giving up; never mask the cause.
            with contextlib.suppress(Exception):
                if buffer:
                    commit()
            raise
        commit()
        elapsed = time.perf_counter() - t0
        summary = assemble(ledger, out, output_format=cfg.output_format, tsv=cfg.tsv)
        summary.resumed_from = already
        summary.elapsed_s = round(elapsed, 3)
        summary.docs_per_s = round(coded_now / elapsed, 3) if elapsed > 0 else 0.0
        summary.workers = cfg.workers
        summary.runner = runner
        summary.peak_rss_mb_per_worker = round(peak_kb / 1024, 1)
        summary.worker_cpu_s = round(cpu_s, 3)
        summary.cpu_ms_per_doc = round(1000 * cpu_s / coded_now, 3) if coded_now else 0.0
        summary.outputs["summary"] = str(out / "summary.json")
        atomic_write_lines(out / "summary.json", [json.dumps(summary.to_dict(), indent=2)])
        if progress:
            progress(done, total)
        return summary
    finally:
        ledger.close()


def _load_policy(path: Path | None) -> dict[str, Any] | None:
    """Read and validate a routing policy file (``opencac.routing.RoutingPolicy``) as a dict."""
    if path is None:
        return None
    try:
        from opencac.routing import RoutingPolicy
    except ImportError:
        raise BatchConfigError("--policy needs the routing layer (opencac.routing), which is not installed.") from None
    return RoutingPolicy.load(path).validate().to_dict()
