"""``opencac batch``: code a directory / JSONL / Parquet of notes, resumably, locally or on Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from opencac.cli._common import handle_errors


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command to the ``opencac`` app."""
    app.command("batch")(batch)


@handle_errors
def batch(
    input: Annotated[Path, typer.Option("--input", "-i", help="Directory of .txt notes, a .jsonl file or a .parquet table.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (results, failures, TSVs, summary, checkpoint).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model path or name; omit for the out-of-the-box engine.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Worker processes (Ray: actors); 0 = in this process.")] = 1,
    ray: Annotated[str | None, typer.Option("--ray", help="Run on Ray Data: a cluster address, or 'local' to start one with --workers CPUs.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="Results format: jsonl or parquet.")] = "jsonl",
    tsv: Annotated[bool, typer.Option("--tsv", help="Also write CodiEsp-style D.tsv / P.tsv (doc_id<TAB>code, best first).")] = False,
    id_column: Annotated[str, typer.Option("--id-column", help="JSONL/Parquet field with the document id.")] = "id",
    text_column: Annotated[str, typer.Option("--text-column", help="JSONL/Parquet field with the note text.")] = "text",
    context_column: Annotated[str, typer.Option("--context-column", help="Optional JSONL/Parquet field with an encounter context.")] = "context",
    rules: Annotated[bool, typer.Option("--rules/--no-rules", help="Run the rules layer (edits, final codes, DRG) on every result.")] = True,
    resume: Annotated[bool, typer.Option("--resume/--restart", help="Continue from the checkpoint in --out, or discard it and start over.")] = True,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Documents per checkpointed chunk.")] = 16,
    ray_batch_size: Annotated[int, typer.Option("--ray-batch-size", help="Smallest batch of documents per Ray task (with --ray).")] = 64,
    checkpoint_interval: Annotated[float, typer.Option("--checkpoint-interval", help="Seconds of coded chunks committed together (0 = every chunk).")] = 0.5,
    doc_timeout: Annotated[float, typer.Option("--doc-timeout", help="Seconds after which one document is abandoned and recorded as a failure (0 = no limit).")] = 300.0,
    policy: Annotated[Path | None, typer.Option("--policy", help="Routing policy JSON for the automation rate (opencac thresholds fit).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Code every note of INPUT exactly once into OUT; a killed run resumes where it stopped."""
    from opencac.batch.runner import BatchConfig, run_batch

    cfg = BatchConfig(input=input, out=out, model=model, workers=workers, ray=ray, output_format=output_format,
                      tsv=tsv, id_column=id_column, text_column=text_column, context_column=context_column,
                      rules=rules, resume=resume, chunk_size=chunk_size, ray_batch_size=ray_batch_size, routing_policy=policy,
                      checkpoint_interval_s=checkpoint_interval, doc_timeout_s=doc_timeout)
    if progress:
        summary = _with_progress(cfg, run_batch)
    else:
        summary = run_batch(cfg)
    data = summary.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _print_summary(data)


def _with_progress(cfg: Any, run: Any) -> Any:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn("[bold]coding"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]} docs/s"), TimeElapsedColumn(), TextColumn("left"),
               TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("coding", total=None, rate="-")
        state: dict[str, Any] = {}

        def update(done: int, total: int) -> None:
            import time

            now = time.perf_counter()
            if "t0" not in state:
                state.update(t0=now, d0=done)
            dt = now - state["t0"]
            rate = f"{(done - state['d0']) / dt:.1f}" if dt > 0 and done > state["d0"] else "-"
            bar.update(task, completed=done, total=total, rate=rate)

        return run(cfg, progress=update)


def _print_summary(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="batch summary", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("documents", f"{d['documents']:,}")
    t.add_row("coded", f"{d['coded']:,}")
    t.add_row("failures", f"{d['failures']:,}")
    if d["duplicates"]:
        t.add_row("duplicate ids skipped", f"{d['duplicates']:,}")
    t.add_row("codes selected", f"{d['codes']:,}")
    t.add_row("suggestions", f"{d['suggestions']:,}")
    t.add_row("automation rate", f"{d['automation_rate']:.1%}  ({d['automation_basis']})")
    if d["resumed_from"]:
        t.add_row("resumed (already done)", f"{d['resumed_from']:,}")
    t.add_row("runner / workers", f"{d['runner']} / {d['workers']}")
    t.add_row("this run", f"{d['elapsed_s']:.1f} s, {d['docs_per_s']:.2f} docs/s")
    t.add_row("worker CPU per document", f"{d['cpu_ms_per_doc']:.1f} ms")
    t.add_row("peak RSS per worker", f"{d['peak_rss_mb_per_worker']:.0f} MiB")
    for k, v in d["outputs"].items():
        t.add_row(k, v)
    Console().print(t)
