"""Rich rendering of a ``RulesOutcome`` for the CLI (``opencac code`` / ``opencac check``)."""

from __future__ import annotations

from typing import Any

from opencac.edits.model import RulesOutcome

_SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render_rules(outcome: RulesOutcome, console: Any, *, show_info: bool = True) -> None:
    """Print the final code set, edits, queries and DRG of ``outcome`` on a rich ``console``."""
    from rich.table import Table

    ctx = outcome.context
    defaulted = ctx.get("defaulted", {})
    console.print(f"[bold]Encounter[/bold]: setting={ctx.get('setting')} age={ctx.get('age')} sex={ctx.get('sex')} "
                  f"date={ctx.get('effective_date')} code set={ctx.get('code_set')}"
                  + (f"  [dim](defaulted: {', '.join(defaulted)})[/dim]" if defaulted else ""))
    t = Table(title="Final code set", show_lines=False)
    for col in ("#", "Code", "Description", "Role", "POA", "Source"):
        t.add_column(col)
    for i, c in enumerate(outcome.final_codes, 1):
        t.add_row(str(i), c.code, c.description[:70], c.role, c.poa or "", c.source + (f" ({c.added_by})" if c.added_by else ""))
    console.print(t)
    edits = [e for e in outcome.edits if show_info or e.severity != "info"]
    if edits:
        et = Table(title=f"Edits ({len(outcome.edits)})")
        for col in ("Severity", "Edit", "Message", "Citation", "Fix"):
            et.add_column(col)
        for e in edits:
            fix = "applied" if e.applied else ("proposed" if e.fix else "")
            cite = e.citation.replace("ICD-10-CM Official Guidelines for Coding and Reporting FY2026", "ICD-10-CM OG")
            et.add_row(f"[{_SEV_STYLE[e.severity]}]{e.severity}[/]", e.id, e.message, cite, fix)
        console.print(et)
    else:
        console.print("[green]No edits.[/green]")
    for q in outcome.queries:
        console.print(f"\n[bold]Physician query {q.id}[/bold] ({q.topic})")
        console.print(q.physician_text(), markup=False, highlight=False)
    d = outcome.drg
    if d is not None:
        drivers = ", ".join(f"{x['code']} {x['level']}" + ("" if x["counts"] == "yes" else " (excluded)") for x in d.drivers) or "none"
        cc = d.crosscheck or {}
        console.print(f"\n[bold]MS-DRG {d.drg}[/bold] {d.description} - weight {d.weight if d.weight is not None else 'n/a'} "
                      f"({d.version}); CC/MCC: {drivers}"
                      + (f"; cross-check {cc.get('drg')} ({'agrees' if cc.get('agrees') else 'differs'})" if cc else ""))
        changed = [i for i in d.impacts if i.drg != d.drg]
        if changed:
            it = Table(title="DRG impact of changes")
            for col in ("Change", "DRG", "Weight", "Delta"):
                it.add_column(col)
            for i in changed:
                it.add_row(i.change, f"{i.drg} {i.description[:50]}", f"{i.weight}", f"{i.weight_delta:+.4f}" if i.weight_delta is not None else "")
            console.print(it)
