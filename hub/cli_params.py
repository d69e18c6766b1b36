"""Job parameters on the command line, all read from the kinds' declaration (hub.job_kinds): `-p key=value` typed by
the field's declared type, a method command's options (help and default from the field's description), one option
given twice refused, and the `jobs kinds` tables. Nothing here repeats a parameter, a default or a limit."""
from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from hub.cli_common import fail
from hub.job_kinds import KINDS, params_schema

WAIT = typer.Option(True, "--wait/--no-wait", help="Follow the job until it ends (--no-wait: print its id and return).")
PARAM = typer.Option([], "--param", "-p", help="Any parameter of the kind, key=value, typed by its declaration "
                                               "(lists comma-separated; see `adaptarium jobs kinds KIND`).")


def schema_of(kind: str) -> dict:
    return params_schema(KINDS[kind])


def field_of(kind: str, name: str) -> dict:
    return schema_of(kind)["properties"][name]


def option(kind: str, name: str, *flags: str, help: str | None = None):
    """A command option for params field `name` of `kind`: unset by default (the hub fills in the declared
    default), its help the field's description and default."""
    field = field_of(kind, name)
    default = field.get("default")
    text = help or field.get("description", "")
    if default is not None:
        text += f" (default {_show(default)})"
    return typer.Option(None, *flags, help=text, show_default=False)


def required_option(kind: str, name: str, *flags: str):
    """A command option for a params field the command cannot do without; its help the field's description."""
    return typer.Option(..., *flags, help=field_of(kind, name).get("description", ""))


def _show(value) -> str:
    if value is None:
        return "none"
    return ",".join(map(str, value)) if isinstance(value, list) else json.dumps(value) if isinstance(
        value, bool) else str(value)


def _variants(field: dict) -> list[dict]:
    return field.get("anyOf", [field])


def _types(field: dict) -> set[str]:
    types = {v.get("type") for v in _variants(field)}
    return types | {"enum"} if any("enum" in v for v in _variants(field)) else types


def parse_value(key: str, raw: str, field: dict):
    """One command-line value as the field declares it: null, a choice, a boolean, an integer, a number, a list
    (comma-separated, each item typed by the list's item type, or JSON) or text."""
    types = _types(field)
    if "null" in types and raw.lower() in ("none", "null"):
        return None
    for variant in _variants(field):
        if "enum" in variant:
            if raw not in variant["enum"]:
                fail(f"{key}={raw!r}: one of {', '.join(map(str, variant['enum']))}")
            return raw
    if "array" in types:
        items = next(v.get("items", {}) for v in _variants(field) if v.get("type") == "array")
        if raw.startswith("["):
            try:
                return json.loads(raw)
            except ValueError:
                fail(f"{key}={raw!r} is not a JSON list")
        return [parse_value(key, item.strip(), items) for item in raw.split(",")] if raw else []
    if "boolean" in types:
        words = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}
        if raw.lower() not in words:
            fail(f"{key}={raw!r}: true or false")
        return words[raw.lower()]
    if "integer" in types:
        try:
            return int(raw)
        except ValueError:
            fail(f"{key}={raw!r}: an integer")
    if "number" in types:
        try:
            return float(raw)
        except ValueError:
            fail(f"{key}={raw!r}: a number")
    if "object" in types:
        try:
            return json.loads(raw)
        except ValueError:
            fail(f"{key}={raw!r} is not a JSON object")
    return raw


def parse_params(pairs: list[str], schema: dict) -> dict:
    """-p key=value pairs, each typed by its field in the kind's JSON schema; an unknown key names the known ones."""
    properties = schema.get("properties", {})
    params = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key:
            fail(f"-p {pair!r} is not key=value")
        if key not in properties:
            fail(f"unknown parameter {key!r}; this kind takes: {', '.join(sorted(properties))}")
        if key in params:
            fail(f"-p {key} is given twice; give it once")
        params[key] = parse_value(key, raw, properties[key])
    return params


def collect(kind: str, options: dict, pairs: list[str], flags: dict[str, str] | None = None) -> dict:
    """A method command's params: its options that were given plus its -p pairs. A parameter set both ways is
    refused (which one should win is a guess); `flags` names an option whose flag is not --<name>."""
    given = {k: v for k, v in options.items() if v is not None}
    extra = parse_params(pairs, schema_of(kind))
    for key in sorted(set(given) & set(extra)):
        flag = (flags or {}).get(key, "--" + key.replace("_", "-"))
        fail(f"{key} is set twice: {flag} {_show(given[key])} and -p {key}={_show(extra[key])}; give one")
    return {**given, **extra}


def describe_type(field: dict) -> str:
    """A field's type with its limits, as a person reads it: 'int 1..1000', 'auto|off', 'list[str]', 'float | none'."""
    parts = []
    for variant in _variants(field):
        kind = variant.get("type")
        if "enum" in variant:
            parts.append("|".join(map(str, variant["enum"])))
        elif kind == "null":
            continue
        elif kind == "array":
            items = variant.get("items", {})
            parts.append(f"list[{describe_type(items) if items else 'any'}]")
        else:
            name = {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}.get(kind, kind or "any")
            low = variant.get("minimum", variant.get("exclusiveMinimum"))
            high = variant.get("maximum", variant.get("exclusiveMaximum"))
            left = ">" if "exclusiveMinimum" in variant else ""  # >0..1: above 0; 0..<1: below 1
            right = "<" if "exclusiveMaximum" in variant else ""
            bounds = f" {left}{_num(low) if low is not None else ''}..{right}{_num(high) if high is not None else ''}" \
                if low is not None or high is not None else ""
            parts.append(name + bounds)
    if any(v.get("type") == "null" for v in _variants(field)):
        parts.append("none")
    return " | ".join(parts) or "any"


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def kinds_table(items: list[dict]) -> Table:
    table = Table("kind", "inputs", "output", "essential params", "summary")
    for k in items:
        low, high = k["inputs"]["min"], k["inputs"]["max"]
        table.add_row(k["name"], str(low) if low == high else f"{low}-{high}", k["output"],
                      ", ".join(k.get("essential", [])), escape(k.get("summary", "")))
    return table


def params_table(kind: dict) -> Table:
    """One kind's parameters, essential ones first (marked *), each with its type and limits, default and meaning."""
    schema = kind["params_schema"]
    required, essential = set(schema.get("required", [])), set(kind.get("essential", []))
    names = sorted(schema.get("properties", {}), key=lambda n: n not in essential)
    table = Table("param", "type", "default", "description", title=f"{kind['name']}: {kind.get('summary', '')}",
                  caption="* essential; the rest are advanced. Set any with -p key=value.")
    for name in names:
        field = schema["properties"][name]
        reference = kind.get("references", {}).get(name)
        kind_text = describe_type(field) + (f" ({reference['object']})" if reference else "")
        default = "required" if name in required else _show(field.get("default"))
        table.add_row(("* " if name in essential else "  ") + name, escape(kind_text), escape(default),
                      escape(field.get("description", "")))
    return table
