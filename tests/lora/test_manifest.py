"""lora.manifest.read_manifest: the one check every multi-adapter bundle (O3 state, routed merge) reads through."""
import json

import pytest

from lora.manifest import read_manifest

PATH = "bundle/manifest.json"


def _files(manifest: dict, *present: str) -> dict[str, bytes]:
    return {PATH: json.dumps(manifest).encode(), **{name: b"x" for name in present}}


def test_a_complete_bundle_returns_its_manifest():
    manifest = {"format": "fmt/1", "files": ["bundle/a.safetensors"], "extra": 3}
    assert read_manifest(_files(manifest, "bundle/a.safetensors"), PATH, "fmt/1", "routed merge") == manifest


def test_a_missing_manifest_says_what_the_files_are_not():
    with pytest.raises(ValueError, match=r"^not an O3 state: bundle/manifest.json is missing$"):
        read_manifest({"adapter_config.json": b"{}"}, PATH, "fmt/1", "O3 state")
    with pytest.raises(ValueError, match=r"^not a routed merge: "):
        read_manifest({}, PATH, "fmt/1", "routed merge")


def test_another_format_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown routed merge format 'fmt/2'"):
        read_manifest(_files({"format": "fmt/2", "files": []}), PATH, "fmt/1", "routed merge")


def test_a_listed_file_that_is_absent_is_named():
    manifest = {"format": "fmt/1", "files": ["bundle/a.safetensors", "bundle/b.safetensors"]}
    with pytest.raises(ValueError, match=r"O3 state is missing files: \['bundle/b.safetensors'\]"):
        read_manifest(_files(manifest, "bundle/a.safetensors"), PATH, "fmt/1", "O3 state")
