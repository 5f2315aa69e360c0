"""Small builders of OpenAPI 3.1 fragments, shared by the modules that describe the API (openapi*.py)."""

from __future__ import annotations

from typing import Any

from .openapi_schemas import Schema, ref
from .params import MAX_ID


def json_body(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ok(name: str, description: str = "OK") -> Schema:
    return json_body(ref(name), description)


def err(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def html(description: str) -> Schema:
    from .openapi_schemas import STR

    return {"description": description, "content": {"text/html": {"schema": STR}}}


def id_param(name: str, what: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "description": f"the {what}'s id"}


def query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def body(schema_name: str, *, required: bool = False) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": ref(schema_name)}}}


def op(tag: str, summary: str, responses: dict[str, Schema], *, parameters: list[Schema] | None = None,
       body: Schema | None = None, description: str = "", **extra: Any) -> Schema:
    out: Schema = {"tags": [tag], "summary": summary}
    if description:
        out["description"] = description
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = body
    return {**out, "responses": responses, **extra}
