"""Ray Data runner: the same chunks, coded by a pool of Ray actors.

Each actor is a :class:`RayCoder` (a callable class given to ``Dataset.map_batches``),
so it loads the engine once and then codes batch after batch. The driver stays the
single writer of the checkpoint: it consumes the coded batches as they stream back and
commits each as one chunk, exactly as the local runner does, so the output is the same.

Ray is an optional dependency (``pip install opencac[ray]``) and is imported only here.
On a real cluster every node needs ``opencac`` (and the model) installed or shipped via a
Ray ``runtime_env``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opencac.batch.readers import SourceDoc
from opencac.batch.worker import ChunkResult, DocumentCoder, Engine, peak_rss_kb
from opencac.errors import BatchConfigError, OpenCACError, WorkerCrashError

#: Retries of a batch whose Ray actor died before the run gives up.
_ACTOR_TASK_RETRIES = 2

if TYPE_CHECKING:
    from opencac.batch.runner import BatchConfig


class RayCoder:
    """Ray Data callable class: one engine per actor, one output row per document.

    Args:
        engine_factory: picklable callable returning an engine.
        rules: run the rules layer on each result.
        max_bytes: largest note accepted.
    """

    def __init__(self, engine_factory: Callable[[], Engine], rules: bool, max_bytes: int,
                 routing_policy: dict[str, Any] | None = None, doc_timeout_s: float = 0.0) -> None:
        import os

        self.pid = os.getpid()
        self.fatal = ""
        self.coder: DocumentCoder | None = None
        try:
            self.coder = DocumentCoder(engine_factory, rules=rules, max_bytes=max_bytes,
                                       routing_policy=routing_policy, doc_timeout_s=doc_timeout_s)
        except OpenCACError as exc:
            self.fatal = json.dumps([type(exc).__name__, exc.message])
        except Exception as exc:
            self.fatal = json.dumps([type(exc).__name__, f"{type(exc).__name__}: {str(exc)[:300]}"])

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        docs = []
        for meta, data, has_data in zip(batch["doc"], batch["data"], batch["has_data"], strict=True):
            fields = json.loads(str(meta))
            if has_data:
                fields["data"] = bytes(data)
            docs.append(SourceDoc(**fields))
        if self.coder is None:
            n = len(docs)
            return {"ordinal": [d.ordinal for d in docs], "doc_id": [d.doc_id for d in docs],
                    "status": ["fatal"] * n, "line": [""] * n, "rss_kb": [peak_rss_kb()] * n,
                    "fatal": [self.fatal] * n, "cpu_s": [0.0] * n}
        res = self.coder.code_chunk(docs)
        return {"ordinal": [r[0] for r in res.rows], "doc_id": [r[1] for r in res.rows],
                "status": [r[2] for r in res.rows], "line": [r[3] for r in res.rows],
                "rss_kb": [res.max_rss_kb] * len(res.rows), "fatal": [""] * len(res.rows),
                "cpu_s": [res.cpu_s / max(1, len(res.rows))] * len(res.rows)}


def _item(doc: SourceDoc) -> dict[str, Any]:
    """One Ray Data row: the record as JSON, plus the note file's bytes for directory inputs
    (read here, because cluster nodes may not see the driver's file system)."""
    fields = asdict(doc)
    fields.pop("data")
    data = b""
    if doc.path is not None and doc.error is None:
        try:
            data = Path(doc.path).read_bytes()
        except OSError as exc:
            fields["error"] = f"cannot read {Path(doc.path).name} ({type(exc).__name__})"
    has_data = doc.path is not None and fields["error"] is None
    return {"doc": json.dumps(fields, ensure_ascii=False), "data": data, "has_data": has_data}


def _init_ray(cfg: BatchConfig) -> bool:
    """Connect to (or start) Ray; returns whether this call started it."""
    try:
        import ray
    except ImportError:
        raise BatchConfigError("--ray needs Ray Data: pip install 'opencac[ray]'.") from None
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if cfg.ray == "local":
        ray.init(num_cpus=cfg.workers, include_dashboard=False, **kw)
    else:
        try:
            ray.init(address=cfg.ray, **kw)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise BatchConfigError(f"cannot connect to the Ray cluster at {cfg.ray!r} ({type(exc).__name__}); "
                                   "use --ray local or a valid address such as ray://head:10001.") from None
    return True


def run_ray(chunks: Iterable[list[SourceDoc]], cfg: BatchConfig, factory: Callable[[], Engine],
            policy: dict[str, Any] | None = None) -> Iterator[ChunkResult]:
    """Code the pending documents on Ray actors; yield one ``ChunkResult`` per coded batch.

    Documents go to Ray Data in waves of ``cfg.ray_wave`` (so the driver never holds
    the whole input); each wave is one dataset mapped by an actor pool of ``cfg.workers``.
    Directory inputs travel as bytes, so nodes need not share the driver's file system.
    """
    import ray
    import ray.data

    started = _init_ray(cfg)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False
    try:
        it = iter(chunks)
        while True:
            wave: list[SourceDoc] = []
            for chunk in it:
                wave.extend(chunk)
                if len(wave) >= cfg.ray_wave:
                    break
            if not wave:
                return
            items = [_item(d) for d in wave]
            batch = max(cfg.chunk_size, cfg.ray_batch_size)
            blocks = max(1, min(len(items) // batch, 4 * cfg.workers * 8))
            ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
                RayCoder,
                fn_constructor_args=(factory, cfg.rules, cfg.max_bytes, policy, cfg.doc_timeout_s),
                batch_size=batch,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=cfg.workers),
                num_cpus=1,
                # Ray Data retries a dead actor's task forever by default: a note that kills
                # its actor would loop. Give up after a few tries instead (progress is kept).
                max_restarts=-1,
                max_task_retries=_ACTOR_TASK_RETRIES,
            )
            try:
                yield from _stream(ds)
            except (OpenCACError, GeneratorExit):
                raise
            except Exception as exc:
                raise WorkerCrashError(
                    f"a Ray worker died {_ACTOR_TASK_RETRIES + 1} times while coding a batch "
                    f"({type(exc).__name__}); what was coded is saved: run again to resume, or resume "
                    "without --ray, where local workers isolate a document that crashes its worker."
                ) from None
    finally:
        if started:
            ray.shutdown()


def _stream(ds: Any) -> Iterator[ChunkResult]:
    """Turn the mapped dataset's output batches into ``ChunkResult``s."""
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        data = batch.to_pydict()
        fatal = next((f for f in data["fatal"] if f), "")
        if fatal:
            name, message = json.loads(fatal)
            yield ChunkResult([], 0, 0, fatal=(name, message))
            return
        rows = list(zip(data["ordinal"], data["doc_id"], data["status"], data["line"], strict=True))
        if rows:
            yield ChunkResult(rows, 0, max(data["rss_kb"]), cpu_s=float(sum(data["cpu_s"])))
