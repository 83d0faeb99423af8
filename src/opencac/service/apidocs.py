"""``/docs``: the OpenAPI description rendered as a plain local HTML page.

FastAPI's default ``/docs`` loads Swagger UI from a CDN, which fails on an offline hospital network,
and ``/redoc`` likewise; both are switched off and this page is served instead: no script, no
external asset, only the workbench's own stylesheet. It is public by design, like
``/openapi.json``: it describes the API's shape and carries no patient data or secrets; every
endpoint it lists still needs a bearer token or a session.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_METHODS = ("get", "post", "put", "patch", "delete")


def _schema_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    ref = schema.get("$ref")
    if ref:
        return str(ref).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list[{_schema_name(schema.get('items'))}]"
    return str(schema.get("type") or schema.get("title") or "")


def render_openapi_html(spec: dict[str, Any]) -> str:
    """An HTML page listing every operation of an OpenAPI 3 ``spec`` (grouped by tag) with its
    parameters, request body and responses, and the component schemas as JSON.

    Args:
        spec: the OpenAPI document (``app.openapi()``).

    Returns:
        A complete HTML document (all values escaped).
    """
    info = spec.get("info") or {}
    groups: dict[str, list[str]] = {}
    for path, item in sorted((spec.get("paths") or {}).items()):
        for method in _METHODS:
            op = item.get(method)
            if not op:
                continue
            params = "".join(
                f"<li><code>{escape(str(p.get('name')))}</code> ({escape(str(p.get('in')))}"
                f"{', required' if p.get('required') else ''}) {escape(_schema_name(p.get('schema')))}</li>"
                for p in op.get("parameters") or [])
            body = ""
            content = ((op.get("requestBody") or {}).get("content") or {})
            for ctype, c in content.items():
                body += f"<li>body <code>{escape(ctype)}</code>: {escape(_schema_name(c.get('schema')))}</li>"
            resp = ", ".join(f"{escape(str(code))} {escape(str((r or {}).get('description') or ''))}"
                             for code, r in (op.get("responses") or {}).items())
            doc = escape(str(op.get("description") or "")).replace("\n", "<br>")
            anchor = escape(f"{method}-{path}".replace("/", "_").replace("{", "").replace("}", ""))
            groups.setdefault(str((op.get("tags") or ["other"])[0]), []).append(
                f'<section class="op" id="{anchor}"><h3><code>{method.upper()} {escape(path)}</code> '
                f"{escape(str(op.get('summary') or ''))}</h3><p>{doc}</p>"
                f"<ul>{params}{body}</ul><p><small>Responses: {resp}</small></p></section>")
    parts = [f"<h2>{escape(tag)}</h2>{''.join(ops)}" for tag, ops in sorted(groups.items())]
    schemas = json.dumps((spec.get("components") or {}).get("schemas") or {}, indent=2, sort_keys=True)
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(str(info.get('title') or 'API'))} - API</title>"
            "<link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main>"
            f"<h1>{escape(str(info.get('title') or 'API'))} <small>{escape(str(info.get('version') or ''))}</small></h1>"
            f"<p>{escape(str(info.get('description') or '')).replace(chr(10), '<br>')}</p>"
            "<p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>. Authenticate with "
            "<code>Authorization: Bearer &lt;token&gt;</code> (POST /api/v1/auth/token).</p>"
            + "".join(parts)
            + f"<h2>Schemas</h2><pre>{escape(schemas)}</pre></main></body></html>")
