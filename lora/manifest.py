"""Reading a bundle's manifest: the JSON file that says what a multi-adapter version (an O3 state, a routed merge)
holds.

Both bundles store several PEFT adapters and tensors under one folder of a version, plus a manifest naming its
format and every file it needs. Reading one checks the same three things in the same order, so a truncated or
foreign upload fails with the same kind of message whichever bundle it claims to be.
"""
from __future__ import annotations

import json


def read_manifest(files: dict[str, bytes], path: str, fmt: str, what: str) -> dict:
    """The manifest at `path` in a version's `files`, after checking it is there, declares format `fmt` and that every
    file it lists is present. `what` names the bundle in errors ("routed merge", "O3 state"); every failure is a
    ValueError saying what is wrong."""
    article = "an" if what[:1].lower() in "aeio" else "a"
    if path not in files:
        raise ValueError(f"not {article} {what}: {path} is missing")
    manifest = json.loads(files[path])
    if manifest.get("format") != fmt:
        raise ValueError(f"unknown {what} format {manifest.get('format')!r}")
    missing = [f for f in manifest["files"] if f not in files]
    if missing:
        raise ValueError(f"{what} is missing files: {missing[:5]}")
    return manifest
