"""The review workbench's templates and static files, shipped in the package (no build step).

Registries other layers append to (call at import time of your router module)::

    from opencac.ui import register_nav, register_template_dir
    register_nav("Audits", "/audits", roles=("auditor",), order=40)
    register_template_dir(Path(__file__).parent / "templates")   # extra Jinja2 templates

Templates extend ``base.html`` and fill ``{% block content %}``; the context always has
``request``, ``user``, ``csrf_token`` and ``nav``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class NavItem:
    """A link in the top navigation; shown to users holding any of ``roles`` (empty = everyone)."""

    label: str
    href: str
    roles: tuple[str, ...] = ()
    order: int = 100


_NAV: list[NavItem] = [
    NavItem("Worklist", "/worklist", (), 10),
    NavItem("Audit log", "/audit-log", ("auditor",), 90),
    NavItem("API", "/docs", (), 99),
]
_TEMPLATE_DIRS: list[Path] = [_HERE / "templates"]


def register_nav(label: str, href: str, roles: tuple[str, ...] | list[str] = (), order: int = 100) -> None:
    """Add a navigation link (idempotent per ``href``)."""
    if any(item.href == href for item in _NAV):
        return
    _NAV.append(NavItem(label, href, tuple(roles), order))


def nav_items(user_roles: list[str] | tuple[str, ...] | None) -> list[NavItem]:
    """The links a user with ``user_roles`` sees, in order (admin sees all)."""
    mine = set(user_roles or ())
    return sorted((n for n in _NAV if not n.roles or "admin" in mine or mine & set(n.roles)),
                  key=lambda n: (n.order, n.label))


def register_template_dir(path: str | Path) -> None:
    """Add a directory of Jinja2 templates (searched after the built-in ones)."""
    p = Path(path)
    if p not in _TEMPLATE_DIRS:
        _TEMPLATE_DIRS.append(p)


def templates_dir() -> Path:
    """The built-in templates directory."""
    return _HERE / "templates"


def static_dir() -> Path:
    """The static files directory (served at ``/static``)."""
    return _HERE / "static"


def make_templates() -> Any:
    """A ``Jinja2Templates`` whose loader searches every registered template dir (autoescaped)."""
    import jinja2
    from starlette.templating import Jinja2Templates

    class _RegistryLoader(jinja2.BaseLoader):
        def get_source(self, environment: jinja2.Environment, template: str) -> Any:
            return jinja2.FileSystemLoader([str(d) for d in _TEMPLATE_DIRS]).get_source(environment, template)

        def list_templates(self) -> list[str]:
            return jinja2.FileSystemLoader([str(d) for d in _TEMPLATE_DIRS]).list_templates()

    env = jinja2.Environment(loader=_RegistryLoader(), autoescape=jinja2.select_autoescape(default=True),
                             auto_reload=False)
    env.filters["pct"] = lambda v: "–" if v is None else f"{float(v) * 100:.0f}%"
    return Jinja2Templates(env=env)
