"""What /openapi.json says beyond the routes' signatures: one error body, the error answers by status code, the name
pattern for path parameters, the streamed multipart upload body, and the content types of file downloads.

In one place so that each route declares its answers in one short line (`responses=errors(401, 404, 422)`), every
error is documented with the same shape, and clients generated from the document (and Schemathesis, which holds
every answer to it in tests/hardening/test_openapi_fuzz.py) see exactly what the hub sends: a status code, a
content type or a body the document does not declare is a failure there, like a 500.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict

# hub.registry.valid_name as a regex every engine runs (no look-ahead): a letter or digit first, then letters,
# digits, '.', '_', '-', never two dots in a row; at most 96 characters.
NAME_PATTERN = r"^[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?$"
NAME_MAX = 96
Name = Annotated[str, Path(pattern=NAME_PATTERN, max_length=NAME_MAX,
                           description="a registry name: 1-96 of [A-Za-z0-9._-], a letter or digit first, no '..'")]


class FieldError(BaseModel):
    """One field FastAPI could not parse (the standard FastAPI/Pydantic validation error item)."""

    model_config = ConfigDict(extra="allow")  # input, ctx, url
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer. `detail` is a sentence saying what was wrong, or, for a request whose fields could not be
    parsed at all, FastAPI's list of the fields at fault."""

    model_config = ConfigDict(extra="allow")  # the Hugging Face–compatible routes add "error", as the Hub does
    detail: str | list[FieldError]


WHY = {
    400: "a body that cannot be parsed: not JSON (or not UTF-8) where JSON is expected, a broken multipart body, an "
         "unexpected or repeated file",
    401: "no token where this needs one, or a token that is malformed, invalid or revoked",
    403: "the token lacks the scope this needs on the namespace",
    404: "no such object, or one the caller may not read (both answer the same)",
    408: "the request body stopped arriving; the connection is closed",
    409: "conflicts with the registry's state",
    413: "the upload is larger than the hub's limit",
    415: "the body is not multipart/form-data",
    416: "the byte range lies outside the file",
    422: "invalid input: a field, a name, a number or a reference",
    503: "the hub is busy (database, upload slots); retry after Retry-After seconds",
}


def errors(*codes: int, why: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status code with the shared error body and what it means here."""
    why = {**WHY, **(why or {})}
    return {code: {"model": ErrorBody, "description": why[code]} for code in codes}


BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}


def multipart_upload(files: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    """`openapi_extra=` for an upload route. The route streams its body itself (hub.api.uploads, never spooled), so
    FastAPI cannot see the form; this declares it: one binary part per file, named by the file, and the text
    fields `base`, `tag` and `description`."""
    properties = {name: {**BINARY, "description": f"the file {name}"} for name in files}
    properties["base"] = {"type": "string", "description": "the base model's name or alias, when the config names none"}
    properties["tag"] = {"type": "string", "description": "a tag to point at the new version"}
    properties["description"] = {"type": "string", "description": "the artifact's description"}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": properties, "required": list(required)}}}}}


# what hub.api.files sends for a stored file, by its name: any JSON for .json, text for .md and .jsonl, else bytes
FILE_CONTENT = {"application/octet-stream": {"schema": BINARY}, "application/json": {"schema": {}},
                "text/markdown": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}}


def file_download() -> dict[int | str, dict[str, Any]]:
    """`responses=` for a file route (with `response_class=Response`, so no JSON 200 is implied): the bytes in the
    file's media type, the partial and not-modified answers, and the range error."""
    return {
        200: {"description": "the file (its ETag is its sha256)", "content": FILE_CONTENT},
        206: {"description": "the requested byte range", "content": {t: {"schema": BINARY} for t in FILE_CONTENT}},
        304: {"description": "If-None-Match named the file's ETag: not modified"},
        **errors(416),
    }


def job_submit_schema(schema: dict, kinds: dict) -> None:
    """`json_schema_extra` for the submit body: one variant per kind (`oneOf`, told apart by a const `kind`), each with that
    kind's input count, its params schema and the output it takes (`namespace/name` for a kind that publishes,
    none otherwise), so the document accepts what the server accepts: it used to declare one body for every kind,
    and a noop with an `output` passed the document and was then refused.

    Rules that span fields (evaluate: one input, or none and a base; exactly one of task or dataset) are the
    server's alone; the document cannot say them."""
    from hub.job_params import NAME, REF  # the job kinds' own patterns

    name = {"type": "string", "pattern": rf"^{NAME}$"}
    published = {"anyOf": [
        {"type": "object", "properties": {"namespace": name, "name": name}, "required": ["namespace", "name"],
         "additionalProperties": False},
        {"type": "string", "pattern": rf"^{NAME}/{NAME}$"}]}
    variants = []
    for spec in kinds.values():
        low, high = spec.inputs
        properties = {
            "kind": {"const": spec.name},
            "inputs": {"type": "array", "items": {"type": "string", "pattern": REF.pattern}, "minItems": low,
                       "maxItems": high},
            "params": spec.params.model_json_schema(),
            "output": published if spec.publishes else {"anyOf": [{"type": "null"}, {"type": "object", "maxProperties": 0}]},
        }
        variants.append({"type": "object", "title": f"{spec.name} job", "description": spec.summary,
                         "properties": properties, "additionalProperties": False,
                         "required": ["kind", "output"] if spec.publishes else ["kind"]})
    for key in ("properties", "required", "type", "additionalProperties"):  # each variant has its own
        schema.pop(key, None)
    schema["oneOf"] = variants  # each variant's `kind` is a const: exactly one variant can match
