"""``opencac codes``: coders' everyday look-ups (lookup, search) and code-set management
(import-index, add-version, info)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from opencac.cli._common import handle_errors

codes_app = typer.Typer(name="codes", help="Look up and search ICD-10-CM / ICD-10-PCS codes; manage code sets.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``codes`` sub-app to the ``opencac`` app."""
    app.add_typer(codes_app, name="codes")


def _date(value: str | None) -> dt.date | None:
    from opencac.errors import InputError

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"bad date {value!r}: expected YYYY-MM-DD (e.g. 2018-05-01).") from exc


def _console() -> Any:
    from rich.console import Console

    return Console()


@codes_app.command("lookup")
@handle_errors
def lookup(
    code: Annotated[str, typer.Argument(help="A code: E11.9, e119, S72.001A, 0DTJ4ZZ ...")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of service YYYY-MM-DD (code set in effect then).")] = None,
    system: Annotated[str | None, typer.Option("--system", help="icd10cm or icd10pcs, for codes such as B020 that are both.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Description, billable status, hierarchy, notes (incl. inherited), 7th characters, validity, PCS axes."""
    from opencac.codesets import load_knowledge
    from opencac.codesets.kb import describe

    info = describe(load_knowledge(), code, _date(as_of), system)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    from rich.table import Table

    con = _console()
    bill = "[green]billable[/green]" if info["billable"] else "[yellow]not billable[/yellow]"
    when = f" on {info['as_of']}" if info["as_of"] else ""
    con.print(f"[bold]{info['code']}[/bold]  {info['description']}")
    con.print(f"{info['system']} {info['kind']}, {bill}{when}"
              + (", [red]manifestation (never first-listed)[/red]" if info.get("manifestation") else ""))
    if "valid_fiscal_years" in info:
        con.print(_validity_line(info["valid_fiscal_years"], info["fiscal_year"]))
    if info["hierarchy"]:
        con.print("path: " + " > ".join(f"{h['code']} {h['description']}" for h in info["hierarchy"]))
    if info.get("billable_codes"):
        con.print("billable codes below: " + ", ".join(info["billable_codes"][:20])
                  + (" …" if len(info["billable_codes"]) > 20 else ""))
    if info.get("axes"):
        t = Table(title="PCS axes")
        for col in ("axis", "char", "meaning"):
            t.add_column(col)
        for a in info["axes"]:
            t.add_row(a["axis"], a["char"], a["meaning"])
        con.print(t)
    if info.get("notes"):
        t = Table(title="Notes (nearest first)")
        for col in ("kind", "at", "text"):
            t.add_column(col)
        for kind, items in info["notes"].items():
            for n in items:
                t.add_row(kind, n["at"], n["text"])
        con.print(t)
    if info.get("seventh_characters"):
        con.print("7th characters: " + "; ".join(f"{s['char']} = {s['meaning']}" for s in info["seventh_characters"]))
    if info["children"] and len(info["children"]) <= 40:
        t = Table(title="Children")
        t.add_column("code")
        t.add_column("description")
        for c in info["children"]:
            t.add_row(c["code"], c["description"])
        con.print(t)


@codes_app.command("search")
@handle_errors
def search(
    text: Annotated[str, typer.Argument(help="Words to search for, e.g. 'type 2 diabetes with nephropathy'.")],
    system: Annotated[str | None, typer.Option("--system", help="icd10cm or icd10pcs (default: both).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="How many results.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Codes whose descriptions, inclusion terms and index paths best match TEXT."""
    from opencac.codesets import CodeSystem, load_knowledge
    from opencac.errors import InputError

    if not text.strip():
        raise InputError("empty search text: give some words, e.g. 'appendicitis'.")
    sys_ = CodeSystem.parse(system) if system else None
    kb = load_knowledge()
    hits = kb.search(text, system=sys_, limit=limit)
    rows = [{"code": c.code, "system": c.system.value, "description": c.description, "billable": c.billable,
             "score": s} for c, s in hits]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title=f"{len(rows)} result(s)")
    for col in ("code", "system", "billable", "score", "description"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["code"], r["system"], "yes" if r["billable"] else "no", f"{r['score']:.3f}", r["description"])
    _console().print(t)


@codes_app.command("import-index")
@handle_errors
def import_index_cmd(
    directory: Annotated[Path, typer.Argument(help="Directory with the CMS ICD-10-CM index XML or flattened CSV files.")],
) -> None:
    """Use the ICD-10-CM alphabetic index / drug / neoplasm / external-cause files in DIRECTORY."""
    from opencac.codesets.versions import import_index

    info = import_index(directory)
    typer.echo(f"index: {info['index_dir']} ({info['phrases']} phrases); stored in {info['config']}")
    for kind, desc in dict(info["files"]).items():  # type: ignore[call-overload]
        typer.echo(f"  {kind}: {desc}")


@codes_app.command("add-version")
@handle_errors
def add_version_cmd(
    fy: Annotated[int, typer.Option("--fy", help="Fiscal year of the code set, e.g. 2019.")],
    tabular: Annotated[Path | None, typer.Option("--tabular", help="Official CMS tabular XML.")] = None,
    order: Annotated[Path | None, typer.Option("--order", help="Official CMS icd10cm_order_<year>.txt (PCS: icd10pcs_order/codes_<year>.txt).")] = None,
    from_pypi: Annotated[bool, typer.Option("--from-pypi", help="Fetch it from an older simple-icd-10-cm release (FY2021).")] = False,
    system: Annotated[str, typer.Option("--system", help="icd10cm (default) or icd10pcs (with --order).")] = "icd10cm",
) -> None:
    """Add an older ICD-10-CM / ICD-10-PCS fiscal year, so that look-ups by date of service use it."""
    from opencac.codesets.versions import add_version

    info = add_version(fy, tabular=tabular, order_file=order, from_pypi=from_pypi, system=system)
    name = "ICD-10-PCS" if info["system"] == "icd10pcs" else "ICD-10-CM"
    typer.echo(f"{name} FY{info['fy']}: {info['codes']} codes ({info['billable']} billable) from {info['path']}; "
               "the knowledge base recompiles on next use.")


@codes_app.command("info")
@handle_errors
def info_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Loaded code-set versions, counts and the cache location."""
    from opencac.codesets import load_knowledge

    kb = load_knowledge()
    data = kb.info()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    from rich.table import Table

    t = Table(title="Code sets")
    for col in ("name", "system", "FY", "source"):
        t.add_column(col)
    for name, v in data["versions"].items():
        t.add_row(name, v["system"], str(v["fiscal_year"]), v["source"])
    con = _console()
    con.print(t)
    for k, v in data["counts"].items():
        con.print(f"{k}: {v}")
    con.print(f"cache: {data['cache']}")


def _validity_line(v: dict[str, Any], fiscal_year: int) -> str:
    """``valid FY2021 or earlier to current (in the loaded code sets FY2021, FY2026); this lookup: FY2026``.
    A code already in the earliest loaded code set may be older; one still in the newest is current."""
    loaded = v.get("loaded") or []
    start = f"FY{v['from']}" if v.get("from") else (f"FY{min(loaded)} or earlier" if loaded else "unknown")
    end = f"FY{v['to']}" if v.get("to") else "current"
    where = ", ".join(f"FY{y}" for y in loaded) or "none"
    return f"valid {start} to {end} (in the loaded code sets {where}); this lookup: FY{fiscal_year}"
