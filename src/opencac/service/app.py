"""The FastAPI application of the coding workbench.

``create_app(settings)`` builds the app: migrates the database to ``head``, wires sessions,
auth, the background coding worker, the UI (templates + static files) and every router module
in ``ROUTER_MODULES`` that exists. Other helpers add routers without editing this file by
creating one of the listed modules, each exposing ``router: fastapi.APIRouter``
(``opencac.service.routers.audits``, ``...learning``, ``...models``, ``...routing``); missing ones are skipped.
Extra modules can also be named in ``$OPENCAC_EXTRA_ROUTERS`` (comma-separated). A module may
also define ``on_startup(app)`` / ``on_shutdown(app)``, called from the app's lifespan.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from opencac.errors import AuthenticationError, InputTooLargeError, OpenCACError
from opencac.service.coding import Coder, get_coder, make_coder, resolve_model_path
from opencac.service.security import RateLimiter, SessionCodec
from opencac.service.settings import Settings
from opencac.service.worker import CodingWorker
from opencac.store.db import READONLY_OPTION, make_engine, session_factory, upgrade

log = logging.getLogger(__name__)

#: Router modules included when present (each exposes ``router``). Order = route precedence.
ROUTER_MODULES: list[str] = [
    "opencac.service.routers.auth",
    "opencac.service.routers.users",
    "opencac.service.routers.ingest",
    "opencac.service.routers.encounters",
    "opencac.service.routers.codes",
    "opencac.service.routers.audit_log",
    "opencac.service.routers.pages",
    "opencac.service.routers.audits",  # audit helper
    "opencac.service.routers.learning",  # learning helper (decision hook, /admin/routing, /admin/models)
    "opencac.service.routers.models",  # learning helper
    "opencac.service.routers.routing",  # learning/routing helper
]

API_DESCRIPTION = """OpenCAC coding workbench API.

Authenticate with `Authorization: Bearer <token>` (get one from `POST /api/v1/auth/token` or
`opencac users token NAME`). Roles: coder, auditor, cdi, admin (admin may do everything).
Errors answer `{"error": {"code": "OC-E###", "message": "..."}}`. Changes to an encounter carry the
`version` you read; a stale version answers 409 and changes nothing.
"""


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get("accept", "")


def _error_json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenCACError)
    async def _opencac_error(request: Request, exc: OpenCACError) -> Response:
        if _wants_html(request):
            if isinstance(exc, AuthenticationError):
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            from opencac.service.routers.pages import render_error

            return render_error(request, exc.http_status, str(exc))
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else None
        return _error_json(exc.http_status, exc.code, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(x) for x in first.get("loc", ()))
        msg = f"OC-E408: invalid request: {loc}: {first.get('msg', 'invalid input')}"
        if len(errs) > 1:
            msg += f" (+{len(errs) - 1} more)"
        return JSONResponse({"error": {"code": "OC-E408", "message": msg},
                             "detail": [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errs]},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_json(exc.status_code, f"HTTP-{exc.status_code}", str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        return _error_json(422, "OC-E408", "OC-E408: a number in the request is out of range for the database.")

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> Response:
        # Bad values the database itself rejects (out-of-range integers, invalid text) are the
        # client's fault: 422. Anything else is ours: 500, logged without parameters.
        if isinstance(exc, DataError) or isinstance(getattr(exc, "orig", None), OverflowError):
            return _error_json(422, "OC-E408", "OC-E408: a value in the request is out of range or invalid "
                                               "for the database.")
        if isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower():
            # SQLite: another writer held the lock longer than busy_timeout. Nothing was saved.
            log.warning("database busy on %s %s", request.method, request.url.path)
            return _error_json(503, "OC-E406", "OC-E406: the database is busy; nothing was saved, try again.",
                               {"Retry-After": "1"})
        log.error("database error on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__)
        return _error_json(500, "OC-E400", "internal database error; the incident was logged (no patient data).")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Never log the request body (it may hold note text): the type and the route only.
        log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return _error_json(500, "OC-E400", "internal error; the incident was logged (no patient data).")


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    body_limit = settings.max_document_bytes * 2 + 65536

    @app.middleware("http")
    async def _limits_and_headers(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > body_limit
            except ValueError:
                too_big = False
            if too_big:
                exc = InputTooLargeError(f"request body is {int(length):,} bytes; the limit is {body_limit:,} bytes "
                                         f"(documents up to {settings.max_document_bytes:,} bytes; set "
                                         "OPENCAC_MAX_DOCUMENT_BYTES to change).")
                return _error_json(413, exc.code, str(exc))
        try:
            response: Response = await call_next(request)
        except Exception as exc:  # noqa: BLE001
            # Unhandled errors stop here, logged by type only: the server's own traceback log could
            # carry an exception message quoting note text.
            log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
            response = _error_json(500, "OC-E400", "internal error; the incident was logged (no patient data).")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # /docs is a local, script-free page now: the same policy applies to every path.
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'")
        return response


def _preload_knowledge(app: FastAPI) -> None:
    """Load the code sets in the background at start-up, so the first reviewer does not wait."""
    from opencac.service.coding import get_knowledge

    try:
        app.dependency_overrides.get(get_knowledge, get_knowledge)()
    except Exception as exc:  # noqa: BLE001 - reported when a route needs the code sets
        log.warning("code sets not preloaded: %s", type(exc).__name__)


def router_modules() -> list[str]:
    """The router modules to include (``ROUTER_MODULES`` + ``$OPENCAC_EXTRA_ROUTERS``)."""
    extra = [m.strip() for m in os.environ.get("OPENCAC_EXTRA_ROUTERS", "").split(",") if m.strip()]
    return ROUTER_MODULES + extra


def create_app(settings: Settings | None = None, *, coder: Coder | None = None) -> FastAPI:
    """Build the workbench app.

    Args:
        settings: service settings (default ``Settings.from_env()``).
        coder: a coder to use instead of the engine (tests); ``app.dependency_overrides[get_coder]``
            works as well.

    Returns:
        The FastAPI app; ``app.state`` holds ``settings``, ``engine``, ``session_factory``,
        ``read_session_factory``, ``codec``, ``login_limiter``, ``worker``.
    """
    settings = settings or Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        # Sync routes run in worker threads; with SQLite many may wait for the write lock at once,
        # so allow more threads than the default 40 that reads are not starved meanwhile.
        anyio.to_thread.current_default_thread_limiter().total_tokens = max(
            100, anyio.to_thread.current_default_thread_limiter().total_tokens)
        if settings.preload_knowledge:
            threading.Thread(target=_preload_knowledge, args=(app,), name="opencac-kb-preload", daemon=True).start()
        if settings.start_worker:
            app.state.worker.start()
        for mod in app.state.router_module_objects:
            hook = getattr(mod, "on_startup", None)
            if callable(hook):  # e.g. the learning queue: warm-up + replay in its own thread
                try:
                    hook(app)
                except Exception as exc:  # noqa: BLE001 - an optional module must not stop the service
                    log.error("start-up of %s failed: %s", mod.__name__, type(exc).__name__)
        try:
            yield
        finally:
            app.state.worker.stop()
            for mod in app.state.router_module_objects:
                hook = getattr(mod, "on_shutdown", None)
                if callable(hook):
                    try:
                        hook(app)
                    except Exception as exc:  # noqa: BLE001
                        log.error("shutdown of %s failed: %s", mod.__name__, type(exc).__name__)

    # Swagger UI / ReDoc load their assets from a CDN (broken offline): /docs is a local page instead.
    app = FastAPI(title="OpenCAC workbench", version="0.1.0", description=API_DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.read_session_factory = session_factory(engine.execution_options(**{READONLY_OPTION: True}))
    app.state.codec = SessionCodec(settings.resolved_secret(), settings.session_hours * 3600)
    app.state.login_limiter = RateLimiter(settings.login_max_attempts, settings.login_window_s)
    if coder is not None:
        app.dependency_overrides[get_coder] = lambda: coder

    def coder_provider() -> Coder:
        override = app.dependency_overrides.get(get_coder)
        if override is not None:
            return override()
        # no --model: the model registry's production version, re-read per run (promote/rollback
        # from /admin/models switch new runs to the new production model)
        registry = (settings.extra or {}).get("model_registry") or None
        return make_coder(resolve_model_path(settings.model_path, registry), settings.apply_rules)

    app.state.coder_provider = coder_provider
    app.state.worker = CodingWorker(app.state.session_factory, coder_provider, settings.worker_poll_s)

    from opencac import ui

    app.mount("/static", StaticFiles(directory=str(ui.static_dir())), name="static")
    app.state.templates = ui.make_templates()
    _install_error_handlers(app)
    _install_middleware(app, settings)
    app.state.router_module_objects = []
    for name in router_modules():
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        app.include_router(mod.router)
        app.state.router_module_objects.append(mod)

    def api_docs() -> HTMLResponse:
        """The API reference, rendered locally from the OpenAPI description (public by design)."""
        from opencac.service.apidocs import render_openapi_html

        return HTMLResponse(render_openapi_html(app.openapi()))

    app.add_api_route("/docs", api_docs, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    return app


def notify_worker(request: Request) -> None:
    """Wake the coding worker (after an ingest)."""
    request.app.state.worker.notify()
