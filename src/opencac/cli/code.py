"""``opencac code`` / ``train`` / ``predict`` / ``evaluate``: the coding engine's commands.

Thin wrappers over :mod:`opencac.coding`; heavy imports happen inside the command bodies.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from opencac.cli._common import handle_errors


def register(app: typer.Typer) -> None:
    """Add ``code``, ``train``, ``predict`` and ``evaluate`` to the ``opencac`` app."""
    app.command("code")(code)
    app.command("train")(train)
    app.command("predict")(predict)
    app.command("evaluate")(evaluate)


def _parse_date(value: str | None, option: str) -> dt.date | None:
    from opencac.errors import InputError

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date; expected YYYY-MM-DD.") from None


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=_err_console(), transient=False)


def _err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# --------------------------------------------------------------------------------- code
@handle_errors
def code(
    file: Annotated[str, typer.Argument(help="Note file (UTF-8 text), or '-' for stdin.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model directory from 'opencac train'; omit for the out-of-the-box engine.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
    setting: Annotated[str, typer.Option("--setting", help="inpatient | outpatient | professional | emergency.")] = "outpatient",
    age: Annotated[int | None, typer.Option("--age", help="Patient age in years.")] = None,
    sex: Annotated[str, typer.Option("--sex", help="F | M | U.")] = "U",
    date_of_service: Annotated[str | None, typer.Option("--date-of-service", help="YYYY-MM-DD; selects the code set (default today).")] = None,
    max_bytes: Annotated[int, typer.Option("--max-bytes", help="Largest note accepted, in bytes.")] = 5 * 1024 * 1024,
    top: Annotated[int, typer.Option("--top", help="Suggestions shown per code system.")] = 15,
    discharge_date: Annotated[str | None, typer.Option("--discharge-date", help="YYYY-MM-DD (inpatient); selects the MS-DRG version.")] = None,
    rules: Annotated[bool, typer.Option("--rules/--no-rules", help="Apply the rules layer: guidelines, claim edits, MS-DRG, CDI queries.")] = True,
    drg_crosscheck: Annotated[bool, typer.Option("--drg-crosscheck", help="Inpatient: also group with the 'drg' package and show whether it agrees with drgpy (about 0.5 s more).")] = False,
) -> None:
    """Code one clinical note: ranked ICD-10-CM / ICD-10-PCS suggestions with evidence, then the
    rules layer's final code set, edits, MS-DRG and physician-query drafts."""
    # (the console entry runs this command with the cyclic garbage collector off: see cli.main)
    from opencac.coding.types import SETTINGS, EncounterContext
    from opencac.errors import InputError, InputNotFoundError
    from opencac.text.document import read_note_bytes

    if setting not in SETTINGS:
        raise InputError(f"--setting {setting!r} is not a known setting.", options=SETTINGS)
    if sex.upper() not in ("F", "M", "U"):
        raise InputError(f"--sex {sex!r} is not valid.", options=("F", "M", "U"))
    if age is not None and not 0 <= age <= 130:
        raise InputError(f"--age {age} is out of range; expected 0-130.")
    if file == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
        name = "stdin"
    else:
        p = Path(file)
        if not p.exists():
            raise InputNotFoundError(f"note file {file} does not exist.")
        if p.is_dir():
            raise InputError(f"{file} is a directory; expected a note file (use 'opencac predict' for a folder).")
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
        name = p.name
    text = read_note_bytes(data, name=name, max_bytes=max_bytes)
    ctx = EncounterContext(setting=setting, age=age, sex=sex.upper(),
                           date_of_service=_parse_date(date_of_service, "--date-of-service"),
                           discharge_date=_parse_date(discharge_date, "--discharge-date"))
    from opencac.coding.engine import CodingEngine

    engine = CodingEngine.load(model)
    doc_id = Path(file).stem if file != "-" else "stdin"
    result = engine.code(text, doc_id=doc_id, context=ctx)
    outcome = None
    if rules:
        from opencac.edits import apply_rules

        outcome = apply_rules(result, text, engine.kb if hasattr(engine, "kb") else None,  # sets result.rules
                              drg_crosscheck=drg_crosscheck)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    from rich.console import Console

    console = Console()
    render_result(result, console, top=top)
    if outcome is not None:
        from opencac.edits.render import render_rules

        console.print()
        render_rules(outcome, console, show_info=False)


def render_result(result: Any, console: Any, top: int = 15) -> None:
    """Print a :class:`~opencac.coding.types.CodingResult` as tables (one per code system)."""
    from rich.table import Table

    console.print(f"[bold]{result.doc_id}[/]  model: {result.model}  code sets: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(result.codeset.items())))
    for title, sugg in (("Diagnoses (ICD-10-CM)", result.diagnoses), ("Procedures (ICD-10-PCS)", result.procedures)):
        from rich import box

        table = Table(title=title, title_justify="left", box=box.SIMPLE, pad_edge=False)
        table.add_column("code", no_wrap=True, min_width=8)
        table.add_column("conf", justify="right", no_wrap=True, min_width=4)
        table.add_column("sel", no_wrap=True, min_width=3)
        table.add_column("assertion", no_wrap=True, min_width=10)
        table.add_column("description", overflow="ellipsis", no_wrap=True, max_width=30)
        table.add_column("evidence", overflow="ellipsis", no_wrap=True, max_width=22)
        for s in sugg[:top]:
            ev = " | ".join(f"{e.text}" for e in s.evidence[:2])
            if s.evidence:
                ev = f"@{s.evidence[0].start} {ev}"
            table.add_row(s.code, f"{s.confidence:.2f}", "yes" if s.selected else "", s.assertion,
                          s.description, ev)
        if not sugg:
            table.add_row("-", "", "", "", "no suggestions", "")
        console.print(table)
    console.print("[dim]sel = proposed for the final code set; --json shows every suggestion's rationale and signals.[/]")
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")


# -------------------------------------------------------------------------------- train
@handle_errors
def train(
    corpus: Annotated[list[Path], typer.Option("--corpus", "-c", help="CodiEsp split directory or JSONL file (repeatable).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    folds: Annotated[int, typer.Option("--folds", help="Out-of-fold splits for the ranker's training features.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    unlabeled: Annotated[list[Path] | None, typer.Option("--unlabeled", help="Folder of uncoded .txt notes (e.g. CodiEsp background): used only for the TF-IDF vocabulary (repeatable).")] = None,
    compile_ranker: Annotated[bool, typer.Option("--compile/--no-compile", help="Compile the model's rankers for this machine now (~10 s per code system), so the first predict / code run does not; needs a C compiler, else LightGBM scores.")] = True,
) -> None:
    """Train a coding model on coded documents (CodiEsp layout or JSONL)."""
    from opencac.coding.corpus import load_corpus
    from opencac.coding.engine import CodingEngine
    from opencac.errors import InputError

    if folds < 2:
        raise InputError(f"--folds {folds} is too small; expected 2 or more.")
    docs = load_corpus(corpus)
    extra: list[str] = []
    for u in unlabeled or []:
        folder = u / "text_files_en" if (u / "text_files_en").is_dir() else u
        if not folder.is_dir():
            raise InputError(f"--unlabeled {u} is not a folder of .txt notes.")
        extra.extend(p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.txt")))
    engine = CodingEngine.load(None)
    with _progress() as prog:
        tasks: dict[str, Any] = {}

        def cb(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task({"analyse": "analysing notes", "train": "training"}.get(stage, stage),
                                             total=total)
            prog.update(tasks[stage], completed=done)

        model = engine.train(docs, folds=folds, seed=seed, progress=cb, unlabeled=extra)
    model.save(out)
    m = model.manifest.get("metrics", {})
    typer.echo(f"model written to {out} ({len(docs)} documents)")
    for system, v in m.items():
        typer.echo(f"  {system}: out-of-fold MAP {v['oof_map']:.3f}, ECE {v['oof_ece']:.3f}, "
                   f"threshold {v['threshold']:.2f}, candidate recall {v['candidate_recall']:.3f}")
    if compile_ranker:
        ready = [s for s in getattr(model, "rankers_", {}) if model.prepare_ranker(s, build=True)]
        if ready:
            typer.echo(f"  compiled ranker ready on this machine: {', '.join(ready)}")


# ------------------------------------------------------------------------------ predict
@handle_errors
def predict(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model directory ('none' for the out-of-the-box engine).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="Directory of .txt notes (or a CodiEsp split dir).")],
    system: Annotated[str, typer.Option("--system", "-s", help="icd10cm | icd10pcs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictions TSV: doc_id<TAB>code, best first.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of service YYYY-MM-DD for every note (default today).")] = None,
    with_confidence: Annotated[bool, typer.Option("--with-confidence", help="Add confidence and selected (1/0) columns.")] = False,
    max_codes: Annotated[int | None, typer.Option("--max-codes", help="At most this many codes per note (default all candidates).")] = None,
) -> None:
    """Code every note of a folder into a CodiEsp-style predictions file (the benchmark contract)."""
    from opencac.codesets.config import one_blas_thread
    from opencac.codesets.types import CodeSystem
    from opencac.coding.engine import CodingEngine
    from opencac.errors import InputError, InputNotFoundError

    sysname = _parse_system(system)
    del CodeSystem
    day = _parse_date(as_of, "--as-of")
    if not input.exists():
        raise InputNotFoundError(f"input {input} does not exist.")
    folder = input / "text_files_en" if (input / "text_files_en").is_dir() else input
    if not folder.is_dir():
        raise InputError(f"--input {input} is not a directory of .txt notes.")
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise InputError(f"{folder} holds no .txt notes.")
    engine = CodingEngine.load(None if model in (None, "none", "") else model)
    for w in engine.setup_warnings:
        typer.echo(f"warning: {w}", err=True)
    gc.freeze()  # the loaded artifacts live until the end: keep the collector's passes between batches off them
    one_blas_thread()  # small products: a second BLAS thread only spins
    try:
        _predict_into(engine, files, out, sysname, day, with_confidence, max_codes)
    finally:
        gc.unfreeze()


def _predict_into(engine: Any, files: list[Path], out: Path, sysname: str, day: Any, with_confidence: bool,
                  max_codes: int | None) -> None:
    from opencac.coding.types import EncounterContext
    from opencac.errors import InputError
    from opencac.text.document import read_note_bytes

    texts, ids, skipped = [], [], 0
    for f in files:
        try:
            texts.append(read_note_bytes(f.read_bytes(), name=f.name))
            ids.append(f.stem)
        except InputError as exc:
            skipped += 1
            typer.echo(f"skipped: {exc}", err=True)
    ctx = EncounterContext(date_of_service=day)
    with _progress() as prog:
        task = prog.add_task("coding", total=len(texts))
        results = engine.code_many(texts, ids, ctx, max_suggestions=max_codes, systems=(sysname,), explain_top=0,
                                   progress=lambda n: prog.advance(task, n))
    out.parent.mkdir(parents=True, exist_ok=True)
    n_rows = 0
    with open(out, "w", encoding="utf-8") as fh:
        for res in results:
            for s in res.ranked(sysname):
                if with_confidence:
                    fh.write(f"{res.doc_id}\t{s.code}\t{s.confidence:.4f}\t{int(s.selected)}\n")
                else:
                    fh.write(f"{res.doc_id}\t{s.code}\n")
                n_rows += 1
    typer.echo(f"wrote {n_rows} rows for {len(results)} notes to {out}" + (f" ({skipped} skipped)" if skipped else ""))


def _parse_system(value: str) -> str:
    from opencac.errors import UnknownCodeSystemError

    v = value.strip().lower()
    if v not in ("icd10cm", "icd10pcs"):
        raise UnknownCodeSystemError(f"unknown code system {value!r}.", options=("icd10cm", "icd10pcs"))
    return v


# ----------------------------------------------------------------------------- evaluate
@handle_errors
def evaluate(
    gold: Annotated[Path, typer.Option("--gold", "-g", help="Gold TSV: doc_id<TAB>code.")],
    pred: Annotated[Path, typer.Option("--pred", "-p", help="Predictions TSV: doc_id<TAB>code[<TAB>confidence[<TAB>selected]], best first.")],
    threshold: Annotated[float, typer.Option("--threshold", help="Confidence threshold when the file has confidences but no selected column.")] = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """CodiEsp MAP, micro precision/recall/F1 and a per-chapter breakdown."""
    from opencac.coding.evaluate import evaluate as run_eval
    from opencac.coding.evaluate import read_gold, read_predictions

    rep = run_eval(read_gold(gold), read_predictions(pred), threshold=threshold)
    if as_json:
        typer.echo(json.dumps(rep.to_dict(), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"MAP {rep.map:.4f}  (gold documents {rep.n_gold_docs}, gold codes {rep.n_gold_codes}, "
              f"predicted documents {rep.n_pred_docs})")
    con.print(f"micro P {rep.precision:.4f}  R {rep.recall:.4f}  F1 {rep.f1:.4f}  at {rep.selection}")
    t = Table(title="per chapter / section", title_justify="left")
    for col in ("chapter", "gold", "tp", "fp", "fn", "P", "R", "F1"):
        t.add_column(col, justify="left" if col == "chapter" else "right")
    for ch, v in rep.chapters.items():
        t.add_row(ch, str(int(v["gold"])), str(int(v["tp"])), str(int(v["fp"])), str(int(v["fn"])),
                  f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}")
    con.print(t)
