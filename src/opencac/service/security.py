"""Session cookies, CSRF tokens and login rate limiting (no database access here)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "opencac_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(slots=True, frozen=True)
class SessionData:
    """What a session cookie carries: the user id and a random nonce (CSRF tokens derive from it)."""

    user_id: int
    nonce: str


class SessionCodec:
    """Signs and reads session cookies and derives CSRF tokens."""

    def __init__(self, secret: str, max_age_s: int) -> None:
        self._secret = secret.encode("utf-8")
        self._ser = URLSafeTimedSerializer(secret, salt="opencac-session")
        self.max_age_s = max_age_s

    def new_cookie(self, user_id: int) -> tuple[str, SessionData]:
        """A fresh signed cookie value for ``user_id``."""
        data = SessionData(user_id=user_id, nonce=secrets.token_urlsafe(16))
        return str(self._ser.dumps({"u": data.user_id, "n": data.nonce})), data

    def read(self, cookie: str | None) -> SessionData | None:
        """The session in a cookie value, or None when absent, forged or expired."""
        if not cookie:
            return None
        try:
            raw: Any = self._ser.loads(cookie, max_age=self.max_age_s)
            return SessionData(user_id=int(raw["u"]), nonce=str(raw["n"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None

    def csrf_token(self, data: SessionData) -> str:
        """The CSRF token of a session (HMAC of its nonce)."""
        return hmac.new(self._secret, b"csrf:" + data.nonce.encode(), hashlib.sha256).hexdigest()[:40]

    def check_csrf(self, data: SessionData, token: str | None) -> bool:
        """True when ``token`` is the session's CSRF token."""
        return bool(token) and hmac.compare_digest(self.csrf_token(data), str(token))


class RateLimiter:
    """Sliding-window counter of failures per key (in-process)."""

    def __init__(self, max_attempts: int, window_s: float) -> None:
        self.max_attempts = max_attempts
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._hits.setdefault(key, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 when allowed now)."""
        now = time.monotonic()
        with self._lock:
            q = self._prune(key, now)
            if len(q) < self.max_attempts:
                return 0.0
            return max(0.0, self.window_s - (now - q[0]))

    def fail(self, key: str) -> None:
        """Count one failure."""
        now = time.monotonic()
        with self._lock:
            self._prune(key, now).append(now)

    def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (after a success)."""
        with self._lock:
            self._hits.pop(key, None)
