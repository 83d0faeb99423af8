"""``opencac serve``, ``opencac users ...`` and ``opencac audit-log verify`` (thin wrappers)."""

from __future__ import annotations

import getpass
import os
from typing import Optional

import typer

from opencac.cli._common import fail, handle_errors

users_app = typer.Typer(help="Manage workbench accounts (admin).", no_args_is_help=True)
audit_log_app = typer.Typer(help="The tamper-evident audit event log.", no_args_is_help=True)


def _factory(database_url: str | None):  # noqa: ANN202
    from opencac.store.db import make_engine, session_factory, upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    return engine, session_factory(engine)


def _count_users(factory) -> int:  # noqa: ANN001
    from sqlalchemy import func, select

    from opencac.store.models import User

    with factory() as s:
        return int(s.execute(select(func.count(User.id))).scalar_one())


@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8000, help="TCP port"),
    database_url: Optional[str] = typer.Option(None, "--database-url", help="SQLAlchemy URL (default: $OPENCAC_DATABASE_URL or a SQLite file in the user data dir)"),
    model: Optional[str] = typer.Option(None, "--model", help="coding model path (default: out-of-the-box engine)"),
    create_admin: bool = typer.Option(False, "--create-admin", help="create the first admin (asks, or reads OPENCAC_ADMIN_USER / OPENCAC_ADMIN_PASSWORD)"),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="mark session cookies Secure (behind HTTPS)"),
    no_worker: bool = typer.Option(False, "--no-worker", help="do not run the background coding worker"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Start the coding workbench (REST API + review screen)."""
    from opencac.store.db import database_url as resolve_url

    url = resolve_url(database_url)
    engine, factory = _factory(url)
    if create_admin:
        _create_admin_interactive(factory)
    if _count_users(factory) == 0:
        typer.echo("No accounts yet. Create the first admin with:\n"
                   f"  opencac users create admin --role admin{' --database-url ' + url if database_url else ''}\n"
                   "or restart with --create-admin.", err=True)
    engine.dispose()
    import uvicorn

    from opencac.service.app import create_app
    from opencac.service.settings import Settings

    settings = Settings.from_env(database_url=url, model_path=model, secure_cookies=secure_cookies or None,
                                 start_worker=False if no_worker else None)
    app = create_app(settings)
    shown = url.split("@")[-1] if "@" in url else url
    typer.echo(f"OpenCAC workbench on http://{host}:{port}  (database: {shown})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")


def _create_admin_interactive(factory) -> None:  # noqa: ANN001
    from opencac.store.accounts import create_user

    user = os.environ.get("OPENCAC_ADMIN_USER") or typer.prompt("admin user name", default="admin")
    password = os.environ.get("OPENCAC_ADMIN_PASSWORD") or getpass.getpass("admin password: ")
    with factory() as s:
        from sqlalchemy import select

        from opencac.store.models import User

        if s.execute(select(User.id).where(User.username == user)).first() is not None:
            typer.echo(f"user {user!r} exists already", err=True)
            return
        create_user(s, user, password, roles=["admin"], actor="cli")
        s.commit()
    typer.echo(f"created admin {user!r}", err=True)


@users_app.command("create")
@handle_errors
def users_create(
    username: str = typer.Argument(..., help="login name"),
    role: list[str] = typer.Option(["coder"], "--role", "-r", help="coder | auditor | cdi | admin (repeatable)"),
    display_name: str = typer.Option("", help="shown in the workbench"),
    password: Optional[str] = typer.Option(None, help="default: $OPENCAC_PASSWORD or asked twice"),
    database_url: Optional[str] = typer.Option(None, "--database-url"),
) -> None:
    """Create an account."""
    from opencac.store.accounts import create_user

    pw = password or os.environ.get("OPENCAC_PASSWORD")
    if not pw:
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            fail("passwords differ")
    _, factory = _factory(database_url)
    with factory() as s:
        u = create_user(s, username, pw or "", roles=role, display_name=display_name, actor="cli")
        s.commit()
        typer.echo(f"created {u.username} ({u.roles})")


@users_app.command("disable")
@handle_errors
def users_disable(username: str, database_url: Optional[str] = typer.Option(None, "--database-url")) -> None:
    """Disable an account (its tokens are revoked)."""
    _set_active(username, False, database_url)


@users_app.command("enable")
@handle_errors
def users_enable(username: str, database_url: Optional[str] = typer.Option(None, "--database-url")) -> None:
    """Re-enable an account."""
    _set_active(username, True, database_url)


def _set_active(username: str, active: bool, database_url: Optional[str]) -> None:
    from opencac.store.accounts import set_active

    _, factory = _factory(database_url)
    with factory() as s:
        set_active(s, username, active, actor="cli")
        s.commit()
    typer.echo(f"{'enabled' if active else 'disabled'} {username}")


@users_app.command("list")
@handle_errors
def users_list(database_url: Optional[str] = typer.Option(None, "--database-url")) -> None:
    """List accounts."""
    from opencac.store.accounts import list_users

    _, factory = _factory(database_url)
    with factory() as s:
        rows = list_users(s)
        typer.echo(f"{'user':<20} {'roles':<28} {'active':<7} last login")
        for u in rows:
            typer.echo(f"{u.username:<20} {u.roles:<28} {'yes' if u.active else 'no':<7} "
                       f"{u.last_login.isoformat(timespec='seconds') if u.last_login else '-'}")


@users_app.command("token")
@handle_errors
def users_token(username: str, name: str = typer.Option("cli", help="a label for the token"),
                days: Optional[int] = typer.Option(None, help="expiry in days (default: none)"),
                database_url: Optional[str] = typer.Option(None, "--database-url")) -> None:
    """Issue an API bearer token (printed once)."""
    from opencac.store.accounts import issue_token

    _, factory = _factory(database_url)
    with factory() as s:
        token = issue_token(s, username, name=name, days=days, actor="cli")
        s.commit()
    typer.echo(token)


@audit_log_app.command("verify")
@handle_errors
def audit_log_verify(database_url: Optional[str] = typer.Option(None, "--database-url")) -> None:
    """Check the hash chain: exit 0 "ok, N events", or exit 1 naming the first bad event and why."""
    from opencac.store.events import verify_events

    _, factory = _factory(database_url)
    with factory() as s:
        report = verify_events(s)
    if report.ok:
        typer.echo(report.summary())
        return
    typer.echo(report.summary(), err=True)
    for p in report.problems[1:5]:
        typer.echo(f"  also event {p.seq}: {p.kind}", err=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``users`` and ``audit-log`` to the ``opencac`` CLI."""
    app.command("serve")(serve)
    app.add_typer(users_app, name="users")
    app.add_typer(audit_log_app, name="audit-log")
