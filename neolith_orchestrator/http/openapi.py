"""The OpenAPI 3.1 schema of the HTTP API, built from the app's Starlette routes and the
pydantic models that validate requests (`inputs`) and describe responses (`outputs`).

Every route the app serves is in the schema: the routes are read from the app itself, so a
route added to any `http/<area>.py` appears at once (summary from its docstring). What the
route table cannot tell — body, query, response shape, who may call it — comes from
`OPERATIONS`, keyed by method and path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.routing import BaseRoute, Route

from neolith_orchestrator.http import inputs
from neolith_orchestrator.http.operations import OPERATIONS, Op
from neolith_orchestrator.http.outputs import Error

_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")
_CONVERTOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
}
_ERRORS = {
    400: "Bad request (e.g. a refused CORS preflight).",
    401: "No valid bearer token (or, at login, wrong credentials).",
    403: "Authenticated, but not allowed.",
    404: "No such resource in the caller's organization.",
    409: "Conflicts with the current state.",
    413: "The body exceeds 1 MiB.",
    422: "Invalid input; `error.details` names each field.",
    429: "Too many attempts; see `Retry-After`.",
    503: "Not ready, or the database is unreachable; see `Retry-After`.",
}


def package_version() -> str:
    try:
        return version("neolith-orchestrator")
    except PackageNotFoundError:
        return "0.0.0"


def _openapi_path(path: str) -> tuple[str, list[tuple[str, str]]]:
    """`/a/{id:uuid}` → `/a/{id}` and its parameters with their convertors."""
    params = [(m.group(1), m.group(2) or "str") for m in _PARAM.finditer(path)]
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path), params


def _summary(route: Route) -> tuple[str, str]:
    doc = (route.endpoint.__doc__ or "").strip()
    first, _, rest = doc.partition("\n")
    summary = first.strip() or route.name.replace("_", " ").capitalize()
    return summary, " ".join(line.strip() for line in rest.splitlines()).strip()


def _models(ops: Sequence[Op]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Error, "serialization"): None}
    for op in ops:
        if isinstance(op.body, type):
            seen[(op.body, "validation")] = None
        if op.response is not None:
            seen[(op.response, "serialization")] = None
    return list(seen)


def _operation(route: Route, op: Op, params: list[tuple[str, str]], refs: Any) -> dict[str, Any]:
    summary, description = _summary(route)
    enums = dict(op.path_enums)
    parameters: list[dict[str, Any]] = []
    for name, convertor in params:
        schema = dict(_CONVERTOR_SCHEMAS.get(convertor, {"type": "string"}))
        if name in enums:
            schema["enum"] = list(enums[name])
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    for q in op.query:
        parameters.append(
            {"name": q.name, "in": "query", "schema": q.schema, "description": q.description}
        )
    if op.auth == "admin":
        description = " ".join(filter(None, ["Organization admins only.", description]))
    out: dict[str, Any] = {"operationId": route.name, "summary": summary}
    if description:
        out["description"] = description
    if op.tag:
        out["tags"] = [op.tag]
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        body = refs[(op.body, "validation")] if isinstance(op.body, type) else op.body
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    success: dict[str, Any] = {"description": "OK" if op.status < 300 else "Created"}
    if op.status == 204:
        success["description"] = "No content"
    elif op.response is not None:
        schema = refs[(op.response, "serialization")]
        success["content"] = {
            op.media_type: {"schema": {"type": "array", "items": schema} if op.many else schema}
        }
    elif op.media_type != "application/json":
        success["content"] = {op.media_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(op.status): success}
    statuses = set(op.errors)
    if op.auth != "none":
        statuses.add(401)
    if op.auth == "admin":
        statuses.add(403)
    if op.body is not None or op.query:
        statuses.add(422)
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _ERRORS.get(status, "Error."),
            "content": {"application/json": {"schema": refs[(Error, "serialization")]}},
        }
    out["responses"] = responses
    if op.auth != "none":
        out["security"] = [{"bearer": []}]
    return out


def build_schema(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `routes` (HEAD, which Starlette adds to GET, omitted)."""
    found: list[tuple[Route, str, Op]] = []
    for route in routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op = OPERATIONS.get((method, route.path), Op())
            found.append((route, method, op))
    refs, definitions = models_json_schema(
        _models([op for _, _, op in found]), ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for route, method, op in found:
        path, params = _openapi_path(route.path)
        operation = _operation(route, op, params, refs)
        # Unique, as OpenAPI requires, even if two modules name their handlers alike.
        while operation["operationId"] in ids:
            operation["operationId"] += "_" + method.lower()
        ids.add(operation["operationId"])
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "neolith-orchestrator",
            "version": package_version(),
            "description": (
                'The HTTP API. Every error is `{"error": {"code", "message"}}`; '
                "validation errors add `details`. Real-time events travel over Socket.IO "
                '(`/socket.io/`, connect with `auth={"token": ...}`), outside this schema. '
                f"Request bodies: at most {inputs.MAX_BODY_BYTES} bytes of JSON."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
