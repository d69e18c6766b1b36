"""The import rules of ../shared/design/architecture.md, checked on the source: method packages stay usable from a
notebook without the server, and the API process stays torch-free and light."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
METHODS = ["merging", "transfer", "unlearning", "generation"]
HEAVY = ["torch", "transformers", "peft", "lora", *METHODS]


def _imports(package: str, module_level_only: bool = False) -> dict[str, set[str]]:
    """Imported module name -> files of `package` importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        nodes = tree.body if module_level_only else ast.walk(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def _offenders(found: dict[str, set[str]], forbidden: list[str]) -> dict[str, set[str]]:
    return {name: files for name, files in found.items()
            if any(name == f or name.startswith(f + ".") for f in forbidden)}


def test_lora_imports_neither_the_hub_nor_the_workers_nor_the_methods():
    assert _offenders(_imports("lora"), ["hub", "workers", *METHODS]) == {}


@pytest.mark.parametrize("package", METHODS)
def test_method_packages_import_neither_the_hub_nor_the_workers(package):
    assert _offenders(_imports(package), ["hub", "workers"]) == {}


# torch-free method modules the hub may read: each kind's params model is its method's config (so the API refuses
# exactly what the method would) and the family check refuses a job at submit without writing the rule a second time;
# the test below keeps them torch-free
HUB_MAY_IMPORT = {"generation.family", "generation.config", "lora.config", "merging.config", "merging.registry",
                  "transfer.config", "unlearning.config"}


CLI_MODULES = {"hub/cli.py", "hub/cli_common.py", "hub/cli_registry.py", "hub/cli_jobs.py"}


def test_the_hub_imports_no_torch_and_no_methods_except_inside_cli_commands():
    found = {name: files for name, files in _imports("hub").items() if name not in HUB_MAY_IMPORT}
    heavy = _offenders(found, [*HEAVY, "workers"])
    assert {name: files - CLI_MODULES for name, files in heavy.items() if files - CLI_MODULES} == {}
    # the CLI may load a base (bases add) or run a worker, but only inside those commands, never at import time
    cli_top_level = {name for name, files in _imports("hub", module_level_only=True).items() if files & CLI_MODULES}
    assert _offenders({name: CLI_MODULES for name in cli_top_level}, [*HEAVY, "workers"]) == {}


def test_workers_never_import_the_http_layer():
    assert _offenders(_imports("workers"), ["hub.api", "hub.cli", "hub.dashboard", "fastapi"]) == {}


@pytest.mark.parametrize("module", sorted(HUB_MAY_IMPORT))
def test_method_modules_the_hub_reads_import_no_torch(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "False"
