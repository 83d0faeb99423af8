"""Batch throughput: notes per second with 1 and 2 local workers and on local Ray.

Codes the 2,751 CodiEsp background notes (or ``--limit`` of them) with ``run_batch`` in
each configuration, from scratch (``--restart``), and reports:

* wall time and notes/s end to end (engine loading included);
* steady-state notes/s (from the first committed chunk to the last: engine load excluded);
* scaling efficiency = rate(2 workers) / rate(1 worker) (target >= 1.8);
* worker CPU milliseconds per note (load-independent: the basis of docs/hour/core);
* peak RSS per worker (``ru_maxrss`` of the worker processes / Ray actors) and of the driver;
* the 1-minute load average before and after each run (the machine is shared).

Usage::

    .venv/bin/python bench/batch_throughput.py [--model MODEL] [--limit N] \
        [--configs local1,local2,ray2] [--repeat 2] [--json bench/batch_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opencac.batch.runner import BatchConfig, run_batch

DEFAULT_NOTES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "codiesp" / "background" / "text_files_en"
CONFIGS = {"local1": (1, None), "local2": (2, None), "ray1": (1, "local"), "ray2": (2, "local"), "inline": (0, None)}


def one_run(notes: Path, work: Path, workers: int, ray: str | None, model: str | None, rules: bool,
            chunk_size: int) -> dict[str, Any]:
    out = work / f"out-{workers}-{ray or 'local'}"
    shutil.rmtree(out, ignore_errors=True)
    marks: list[tuple[float, int]] = []

    def progress(done: int, total: int) -> None:
        marks.append((time.perf_counter(), done))

    load_before = os.getloadavg()[0]
    c0 = time.process_time()
    t0 = time.perf_counter()
    summary = run_batch(BatchConfig(input=notes, out=out, model=model, workers=workers, ray=ray, rules=rules,
                                    chunk_size=chunk_size, resume=False), progress=progress)
    wall = time.perf_counter() - t0
    driver_cpu = time.process_time() - c0
    load_after = os.getloadavg()[0]
    commits = [m for m in marks[1:-1]]  # drop the initial (0) and final (after assembly) calls
    steady = None
    if len(commits) >= 2:
        (ta, da), (tb, db) = commits[0], commits[-1]
        steady = (db - da) / (tb - ta) if tb > ta else None
    docs = summary.coded + summary.failures
    return {
        "workers": workers, "runner": summary.runner, "documents": docs, "coded": summary.coded,
        "failures": summary.failures, "codes": summary.codes, "automation_rate": round(summary.automation_rate, 4),
        "wall_s": round(wall, 2), "notes_per_s": round(docs / wall, 3),
        "steady_notes_per_s": round(steady, 3) if steady else None,
        "first_chunk_s": round(commits[0][0] - t0, 2) if commits else None,
        "peak_rss_mb_per_worker": summary.peak_rss_mb_per_worker,
        "worker_cpu_ms_per_doc": summary.cpu_ms_per_doc,
        "docs_per_cpu_hour": round(3600_000 / summary.cpu_ms_per_doc) if summary.cpu_ms_per_doc else None,
        "driver_cpu_ms_per_doc": round(1000 * driver_cpu / max(1, docs), 3),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load1_before": round(load_before, 2), "load1_after": round(load_after, 2),
    }


def markdown(results: list[dict[str, Any]], scaling: list[dict[str, Any]]) -> str:
    """The figures as Markdown tables (for bench/RESULTS-batch.md)."""
    lines = ["| run | config | notes | wall s | notes/s (end to end) | notes/s (steady) | first commit s | "
             "worker CPU ms/note | driver CPU ms/note | peak RSS/worker MiB | driver RSS MiB | load1 before/after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['repeat']} | {r['config']} | {r['documents']} | {r['wall_s']} | {r['notes_per_s']} | "
                     f"{r['steady_notes_per_s']} | {r['first_chunk_s']} | {r['worker_cpu_ms_per_doc']} | "
                     f"{r['driver_cpu_ms_per_doc']} | {r['peak_rss_mb_per_worker']} | {r['driver_peak_rss_mb']} | "
                     f"{r['load1_before']} / {r['load1_after']} |")
    lines += ["", "| run | speed-up | metric | value |", "|---|---|---|---|"]
    lines += [f"| {x['repeat']} | {x['vs']} vs {x['base']} | {x['metric']} | {x['speedup']}x |" for x in scaling]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=Path, default=DEFAULT_NOTES)
    ap.add_argument("--model", default=None, help="model path/name (default: out-of-the-box engine)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N notes (0 = all)")
    ap.add_argument("--configs", default="local1,local2,ray2")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=16)
    ap.add_argument("--no-rules", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    if not args.notes.is_dir():
        sys.exit(f"notes directory {args.notes} not found (needs ../shared/data)")
    with tempfile.TemporaryDirectory(prefix="opencac-bench-") as tmp:
        work = Path(tmp)
        notes = args.notes
        if args.limit:
            notes = work / "notes"
            notes.mkdir()
            for p in sorted(args.notes.glob("*.txt"))[: args.limit]:
                os.symlink(p, notes / p.name)
        results: list[dict[str, Any]] = []
        for rep in range(args.repeat):
            for name in args.configs.split(","):
                workers, ray = CONFIGS[name]
                r = one_run(notes, work, workers, ray, args.model, not args.no_rules, args.chunk_size)
                r |= {"config": name, "repeat": rep + 1}
                results.append(r)
                print(json.dumps(r), flush=True)
    by = {(r["config"], r["repeat"]): r for r in results}
    scaling = []
    for rep in range(1, args.repeat + 1):
        for base, two in (("local1", "local2"), ("ray1", "ray2"), ("local1", "ray2")):
            a, b = by.get((base, rep)), by.get((two, rep))
            if a and b:
                key = "steady_notes_per_s" if a["steady_notes_per_s"] and b["steady_notes_per_s"] else "notes_per_s"
                scaling.append({"repeat": rep, "base": base, "vs": two, "metric": key,
                                "speedup": round(b[key] / a[key], 3)})
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "command": " ".join(sys.argv), "model": args.model or "out-of-the-box", "results": results,
              "scaling": scaling}
    print(json.dumps({"scaling": scaling}, indent=1))
    print(markdown(results, scaling))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
