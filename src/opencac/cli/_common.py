"""Shared CLI helpers: one clear line and a non-zero exit for every OpenCAC error."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from opencac.errors import OpenCACError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Decorator: turn OpenCACError (and a few OS errors) into one line + exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OpenCACError as exc:
            fail(str(exc))
        except FileNotFoundError as exc:
            fail(f"OC-E005: file not found: {exc.filename}")
        except IsADirectoryError as exc:
            fail(f"OC-E001: expected a file, got a directory: {exc.filename}")
        except PermissionError as exc:
            fail(f"OC-E001: permission denied: {exc.filename}")
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
