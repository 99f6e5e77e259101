"""`GET /openapi.json`, and `GET /docs`: the same schema as a page rendered on the server.

Rendered here rather than by a JavaScript docs UI: the page must work with no network and
under our Content-Security-Policy (scripts and styles from this origin only, nothing
inline), and plain HTML with one stylesheet (`/docs/docs.css`) needs no script, no CDN and
no extra dependency. Every value from the schema is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from neolith_orchestrator.http.docs_style import DOCS_CSS
from neolith_orchestrator.http.openapi import build_schema

_AUTH = {"bearer": "bearer token"}


def schema_of(request: Request) -> dict[str, Any]:
    """The app's schema, built once from its routes."""
    state = request.app.state
    schema = getattr(state, "openapi_schema", None)
    if schema is None:
        schema = build_schema(request.app.routes)
        state.openapi_schema = schema
    assert isinstance(schema, dict)
    return schema


async def openapi_json(request: Request) -> Response:
    """The OpenAPI 3.1 schema of this API."""
    return JSONResponse(schema_of(request))


async def docs(request: Request) -> Response:
    """This API's documentation, as a page."""
    return HTMLResponse(render(schema_of(request)))


async def docs_css(request: Request) -> Response:
    """The documentation page's stylesheet."""
    return Response(DOCS_CSS, media_type="text/css")


def _type(schema: dict[str, Any]) -> str:
    """A JSON schema as a short, linked, escaped type: `string (uuid)`, `UserOut[]`."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return _type(schema.get("items", {})) + "[]"
    text = escape(kind)
    if "format" in schema:
        text += f" ({escape(str(schema['format']))})"
    if "enum" in schema:
        text += ": " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
    return text


def _rules(schema: dict[str, Any]) -> str:
    keys = ("minLength", "maxLength", "minimum", "maximum", "default")
    rules = [f"{k} {schema[k]!r}" for k in keys if k in schema]
    text = escape(str(schema.get("description", "")))
    return "; ".join(filter(None, [text, escape(", ".join(rules))]))


def _fields(schema: dict[str, Any]) -> str:
    props: dict[str, Any] = schema.get("properties", {})
    if not props:
        return f"<p>{_type(schema)} {_rules(schema)}</p>"
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code>{' <em>required</em>' if name in required else ''}"
        f"</td><td>{_type(prop)}</td><td>{_rules(prop)}</td></tr>"
        for name, prop in props.items()
    )
    return f"<table><tr><th>field</th><th>type</th><th>notes</th></tr>{rows}</table>"


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    parts = [
        f'<section class="op" id="op-{escape(op.get("operationId", ""))}">',
        f'<h3><span class="method {escape(method)}">{escape(method.upper())}</span> '
        f"<code>{escape(path)}</code></h3>",
        f"<p>{escape(op.get('summary', ''))}</p>",
    ]
    if op.get("description"):
        parts.append(f"<p>{escape(op['description'])}</p>")
    auth = ", ".join(_AUTH.get(k, k) for s in op.get("security", []) for k in s) or "none"
    parts.append(f'<p class="auth">Authentication: {escape(auth)}</p>')
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{_type(p['schema'])}</td><td>{_rules(p)} {_rules(p['schema'])}</td></tr>"
            for p in op["parameters"]
        )
        parts.append(
            "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th>"
            f"<th>notes</th></tr>{rows}</table>"
        )
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        parts.append(f"<h4>Body</h4>{_fields(body['schema'])}")
    rows = ""
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        shapes = ", ".join(
            f"{escape(media)}: {_type(c.get('schema', {}))}" for media, c in content.items()
        )
        rows += (
            f"<tr><td>{escape(status)}</td><td>{escape(response.get('description', ''))}</td>"
            f"<td>{shapes}</td></tr>"
        )
    parts.append(f"<h4>Responses</h4><table>{rows}</table></section>")
    return "".join(parts)


def render(schema: dict[str, Any]) -> str:
    """The documentation page for an OpenAPI schema."""
    info = schema.get("info", {})
    ops = [
        (op.get("tags", ["other"])[0], path, method, op)
        for path, methods in schema.get("paths", {}).items()
        for method, op in methods.items()
    ]
    tags = sorted({tag for tag, *_ in ops})
    nav = "".join(f'<li><a href="#tag-{escape(t)}">{escape(t)}</a></li>' for t in tags)
    sections = []
    for tag in tags:
        body = "".join(_operation(p, m, op) for t, p, m, op in ops if t == tag)
        sections.append(f'<h2 id="tag-{escape(tag)}">{escape(tag)}</h2>{body}')
    schemas = "".join(
        f'<section class="schema" id="schema-{escape(name)}"><h3>{escape(name)}</h3>'
        f"<p>{escape(str(s.get('description', '')))}</p>{_fields(s)}</section>"
        for name, s in sorted(schema.get("components", {}).get("schemas", {}).items())
    )
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{title}</title><link rel="stylesheet" href="/docs/docs.css"></head><body>'
        f"<header><h1>{title}</h1><p>{escape(info.get('description', ''))}</p>"
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI '
        f"{escape(schema.get('openapi', ''))})</p><nav><ul>{nav}"
        '<li><a href="#schemas">schemas</a></li></ul></nav></header><main>'
        f'{"".join(sections)}<h2 id="schemas">schemas</h2>{schemas}</main></body></html>'
    )


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/docs/docs.css", docs_css, methods=["GET"]),
]
