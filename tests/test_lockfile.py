"""The test command installs from requirements/test.lock, so an upstream release cannot turn a green tree red.

These pin down that the lock stays the source of truth: every dependency the project declares (runtime and the
`test` extra) is locked to one version with hashes, that version satisfies the range in pyproject.toml (a range
raised without regenerating the lock fails here, not on a fresh machine), and both the README's test command and
.ci/run install from it.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "test.lock"


def _locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (version, hashes) for each `name==version \\ --hash=...` entry of the lock."""
    text = LOCK.read_text().replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==(\S+)\s*(.*)$", line)
        if match:
            name, version, rest = match.groups()
            entries[canonicalize_name(name)] = (Version(version), re.findall(r"--hash=sha256:([0-9a-f]{64})", rest))
    return entries


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_every_declared_dependency_is_locked_with_hashes_inside_its_range():
    locked = _locked()
    assert len(locked) > 50, "the lock should pin the whole dependency tree, not only the direct dependencies"
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is declared in pyproject.toml but not in requirements/test.lock"
        version, hashes = locked[name]
        assert hashes, f"{req.name}=={version} has no --hash in the lock"
        assert req.specifier.contains(version, prereleases=True), (
            f"lock pins {req.name}=={version}, outside pyproject's {req.specifier}: regenerate the lock")


def test_every_locked_entry_carries_a_hash():
    missing = [name for name, (_, hashes) in _locked().items() if not hashes]
    assert not missing, f"entries without hashes: {missing}"


def test_readme_test_command_and_ci_install_from_the_lock():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if "python -m pytest" in line and "pip install" in line]
    assert len(commands) == 1, "README should hold exactly one test command"
    command = commands[0]
    assert "--require-hashes -r requirements/test.lock" in command
    assert "'.[test]'" not in command, "installing the extra resolves fresh versions: use the lock"
    assert command in (ROOT / ".ci" / "run").read_text(), ".ci/run must run the README's test command verbatim"
