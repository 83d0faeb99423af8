"""``opencac check CLAIM.json [--json]``: pre-bill edits on an already coded claim.

Exit status: 0 no error-severity edits, 1 at least one error-severity edit (the claim
should not be billed as is), 2 bad input (unreadable file, bad JSON, unknown code).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from opencac.cli._common import handle_errors


def register(app: typer.Typer) -> None:
    """Add the ``check`` command to the app."""

    @app.command("check")
    @handle_errors
    def check(
        claim_path: Path = typer.Argument(..., metavar="CLAIM.json", help="Claim JSON: {\"context\": {...}, "
                                          "\"diagnoses\": [...] (first = principal), \"procedures\": [...]}"),
        as_json: bool = typer.Option(False, "--json", help="Print the full outcome as JSON."),
    ) -> None:
        """Scrub a coded claim: guideline conventions, MCE-style edits, DRG (inpatient).

        Exits 1 when any error-severity edit is found, 2 on bad input.
        """
        from opencac.edits import check_claim
        from opencac.errors import ClaimFormatError, InputNotFoundError

        if not claim_path.is_file():
            raise InputNotFoundError(f"claim file {str(claim_path)!r} not found.")
        raw = claim_path.read_bytes()
        try:
            claim = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise ClaimFormatError(f"{claim_path.name} is not UTF-8 text.") from exc
        except json.JSONDecodeError as exc:
            raise ClaimFormatError(f"{claim_path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from exc
        outcome = check_claim(claim)
        if as_json:
            typer.echo(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))
        else:
            from rich.console import Console

            from opencac.edits.render import render_rules

            render_rules(outcome, Console())
        if outcome.has_errors():
            raise typer.Exit(1)
