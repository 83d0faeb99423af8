"""Rich rendering of a ``RulesOutcome`` for the CLI (``opencac code`` / ``opencac check``)."""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Any

from opencac.edits.model import RulesOutcome

_SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def fix_text(fix: dict[str, Any] | None) -> str:
    """A fix in one line: ``replace I10 -> I11.0; remove R05.9; add Z79.4``."""
    if not fix:
        return ""
    parts = [f"replace {o} -> {n}" for o, n in (fix.get("replace") or {}).items()]
    if fix.get("remove"):
        parts.append("remove " + ", ".join(fix["remove"]))
    if fix.get("add"):
        parts.append("add " + ", ".join(a if isinstance(a, str) else str(a.get("code")) for a in fix["add"]))
    if fix.get("remove_dup"):
        parts.append(f"remove duplicate {fix['remove_dup']}")
    if fix.get("sequence"):
        parts.append("sequence " + ", ".join(fix["sequence"][:4]) + (" ..." if len(fix["sequence"]) > 4 else ""))
    return "; ".join(parts)


def change_text(ch: dict[str, Any]) -> str:
    """An applied change in one line: ``replace I10 -> I11.0`` / ``add Z79.4 after E11.9``."""
    op = ch.get("op", "")
    if op == "replace":
        return f"replace {ch.get('code')} -> {ch.get('new')}"
    if op == "add":
        return f"add {ch.get('code')}" + (f" after {ch['anchor']}" if ch.get("anchor") else "")
    return f"{op.replace('_', ' ')} {ch.get('code')}"


def render_rules(outcome: RulesOutcome, console: Any, *, show_info: bool = True) -> None:
    """Print the final code set, edits, queries and DRG of ``outcome`` on a rich ``console``."""
    from rich.table import Table
    from rich.text import Text

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
        # one block per edit (a header line, then the message and the citation at full width): a
        # five-column table wrapped every message into a narrow column, ~15 lines per edit at 80
        counts = Counter(e.severity for e in outcome.edits)
        console.print(f"\n[bold]Edits ({len(outcome.edits)})[/bold]: "
                      + ", ".join(f"{counts[s]} {s}{'s' if counts[s] != 1 and s != 'info' else ''}"
                                  for s in ("error", "warning", "info") if counts[s]))
        for e in edits:
            status = e.fix_status
            fix = "" if status is None else f"{status}: {fix_text(e.fix)}" if status != "unchanged" else "(nothing left)"
            cite = e.citation.replace("ICD-10-CM Official Guidelines for Coding and Reporting FY2026", "ICD-10-CM OG")
            head = Text.assemble((f"{e.severity:<8}", _SEV_STYLE[e.severity]), (e.id, "bold"))
            if fix:
                head.append(f"  {fix}", style="magenta" if status == "proposed" else "green")
            console.print(head)
            width = max(40, console.width - 1)
            console.print(textwrap.fill(e.message, width, initial_indent="  ", subsequent_indent="  "),
                          markup=False, highlight=False)
            console.print(textwrap.fill(cite, width, initial_indent="  ", subsequent_indent="  "),
                          style="dim", markup=False, highlight=False)
    else:
        console.print("[green]No edits.[/green]")
    if outcome.changes:
        console.print("[bold]Applied by the rules[/bold] (certain from the note and the codes): "
                      + "; ".join(f"{change_text(c)} ({c.get('rule', '')})" for c in outcome.changes),
                      markup=True, highlight=False)
    proposed = outcome.proposed
    if proposed:
        pt = Table(title=f"Proposed fixes for the coder ({len(proposed)}): not applied, accept or reject")
        for col in ("Edit", "Fix", "Rule"):
            pt.add_column(col)
        for e in proposed:
            pt.add_row(e.id, fix_text(e.fix), e.rule)
        console.print(pt)
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
