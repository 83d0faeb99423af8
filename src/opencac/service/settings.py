"""Service settings (one dataclass; ``Settings.from_env()`` reads ``OPENCAC_*`` variables)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path


def _env_bool(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    if v is None:
        return default
    return v.strip().lower() in ("1", "true", "yes", "on")


@dataclass(slots=True)
class Settings:
    """Configuration of the workbench service.

    Attributes:
        database_url: SQLAlchemy URL (default ``$OPENCAC_DATABASE_URL`` or a SQLite file in the
            user data dir).
        model_path: coding model for ``CodingEngine.load`` (None = out-of-the-box engine).
        secret_key: signs session cookies and CSRF tokens (default: ``$OPENCAC_SECRET_KEY``, else a
            key generated once and kept in the data dir).
        max_document_bytes: largest document accepted at ingest (413 beyond).
        secure_cookies: mark session cookies ``Secure`` (set behind HTTPS).
        session_hours: session cookie lifetime.
        login_max_attempts / login_window_s: failed logins allowed per client and user per window.
        start_worker: run the background coding worker in-process.
        worker_poll_s: how often the worker looks for queued runs when not notified.
        apply_rules: run ``opencac.edits.apply_rules`` after the engine.
        preload_knowledge: load the code sets in a background thread at start-up.
    """

    database_url: str | None = None
    model_path: str | None = None
    secret_key: str | None = None
    max_document_bytes: int = 1_000_000
    secure_cookies: bool = False
    session_hours: int = 12
    login_max_attempts: int = 5
    login_window_s: int = 300
    start_worker: bool = True
    worker_poll_s: float = 1.0
    apply_rules: bool = True
    preload_knowledge: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``OPENCAC_*`` environment variables, then ``overrides`` (None ignored)."""
        s = cls(
            database_url=os.environ.get("OPENCAC_DATABASE_URL"),
            model_path=os.environ.get("OPENCAC_MODEL"),
            secret_key=os.environ.get("OPENCAC_SECRET_KEY"),
            max_document_bytes=int(os.environ.get("OPENCAC_MAX_DOCUMENT_BYTES", "1000000")),
            secure_cookies=_env_bool("OPENCAC_SECURE_COOKIES", False),
            session_hours=int(os.environ.get("OPENCAC_SESSION_HOURS", "12")),
            login_max_attempts=int(os.environ.get("OPENCAC_LOGIN_MAX_ATTEMPTS", "5")),
            login_window_s=int(os.environ.get("OPENCAC_LOGIN_WINDOW_S", "300")),
            start_worker=_env_bool("OPENCAC_START_WORKER", True),
        )
        names = {f.name for f in fields(cls)}
        for k, v in overrides.items():
            if k not in names:
                raise TypeError(f"unknown setting {k!r}")
            if v is not None:
                setattr(s, k, v)
        return s

    def resolved_secret(self) -> str:
        """The secret key; generated and stored (mode 600) in the data dir on first use if unset."""
        if self.secret_key:
            return self.secret_key
        from opencac.store.db import default_data_dir

        path = Path(default_data_dir()) / "secret_key"
        if path.is_file():
            self.secret_key = path.read_text(encoding="utf-8").strip()
        else:
            self.secret_key = secrets.token_urlsafe(48)
            path.write_text(self.secret_key, encoding="utf-8")
            path.chmod(0o600)
        return self.secret_key
