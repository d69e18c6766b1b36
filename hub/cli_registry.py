"""Registry commands: bases, and push / pull / ls / show / tag / yank for adapters, datasets and generators alike.

Every command here is a client of the REST API. A reference is `namespace/name[@ref]`; which object it names is
`--type`, or found: an adapter first, else the one dataset or generator of that name (a kit's adapter and its seed
dataset share a name, so `--type dataset` or `adaptarium datasets ...` picks the dataset). Reads print a table by
default and the API's JSON with `--json`.
"""
from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from hub.cli_common import JSON, OBJECTS, client, console, err, fail, get_or_fail, print_json, split_ref
from hub.client import PLURAL, UPLOADS, ClientError, HubClient

bases_app = typer.Typer(help="Base models: add, ls, show.", no_args_is_help=True)
datasets_app = typer.Typer(help="Datasets (JSONL of prompt/completion): push, pull, ls, show.", no_args_is_help=True)
generators_app = typer.Typer(help="Generators (ICM-LoRA CVAEs): pull, ls, show.", no_args_is_help=True)
TYPE = typer.Option(None, "--type", "-t", help="adapter, dataset or generator (default: an adapter if one has the "
                                               "name, else the dataset or generator that has it).")


def _transfer_bar() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=err)


def _object(value: str | None) -> str | None:
    if value is not None and value not in OBJECTS:
        fail(f"--type {value!r} is not one of {', '.join(OBJECTS)}")
    return value


def _find(c: HubClient, target: str, object: str | None) -> tuple[str, dict]:
    """(object, artifact view) of namespace/name: the given type, else the first of adapter, dataset, generator."""
    namespace, name, _ = split_ref(target)
    for candidate in [object] if object else OBJECTS:
        try:
            return candidate, c.get(f"/api/v1/{PLURAL[candidate]}/{namespace}/{name}")
        except ClientError as exc:
            if exc.status != 404 or object:
                fail(exc.detail)
    fail(f"no adapter, dataset or generator {namespace}/{name}")


# ------------------------------------------------------------------ bases

@bases_app.command("ls")
def bases_ls(as_json: bool = JSON):
    """The registered base models."""
    items = get_or_fail("/api/v1/bases")["items"]
    if as_json:
        return print_json({"items": items})
    table = Table("base", "architecture", "modules", "aliases", "source")
    for b in items:
        table.add_row(b["name"], b["architecture"], str(len(b["module_shapes"])), ", ".join(b["aliases"]),
                      b["source"] or "-")
    console.print(table)


@bases_app.command("show")
def bases_show(name: str, as_json: bool = JSON):
    """One base: its architecture, source, aliases and adaptable modules with their shapes."""
    base = get_or_fail(f"/api/v1/bases/{name}")
    if as_json:
        return print_json(base)
    console.print(f"[bold]{escape(base['name'])}[/bold]  {base['architecture']}  source: {base['source'] or '-'}"
                  f"  aliases: {', '.join(base['aliases']) or '-'}", highlight=False)
    table = Table("module", "shape (out, in)")
    for module, shape in sorted(base["module_shapes"].items()):
        table.add_row(module, " x ".join(map(str, shape)))
    console.print(table)


@bases_app.command("add")
def bases_add(name: str,
              from_dir: Path = typer.Option(None, help="A Hugging Face model folder (only its config.json is read)."),
              from_gguf: Path = typer.Option(None, help="A GGUF file (its metadata only; workers dequantise it)."),
              from_config: Path = typer.Option(None, help="A config.json alone: no weights, so see --source."),
              tiny: str = typer.Option(None, help="A tiny random model family: llama, qwen2, gemma3."),
              source: str = typer.Option(None, help="Where workers load the weights: dir:/ABS/PATH, gguf:/ABS/FILE, "
                                                    "or a shortcut. Defaults to the --from-dir/--from-gguf path."),
              alias: list[str] = typer.Option([], help="Other names, e.g. the HF id adapters name.")):
    """Register a base model, recording its adaptable modules' shapes from its config alone (no weights loaded)."""
    chosen = [x for x in (from_dir, from_gguf, from_config, tiny) if x]
    if len(chosen) != 1:
        fail("give exactly one of --from-dir, --from-gguf, --from-config, --tiny")
    if tiny and source:
        fail("--source does not go with --tiny (a tiny base is rebuilt from its name)")
    from lora import shapes

    if source and (problem := shapes.source_problem(source)):
        fail(problem)
    try:
        if tiny:
            from lora.bases import architecture, load_base, module_shapes

            spec = f"tiny:{tiny}?seed=0"
            model, _ = load_base(spec)
            arch, found = architecture(model), module_shapes(model)
        else:
            if from_dir:
                config, spec = shapes.config_from_dir(from_dir), f"dir:{from_dir.resolve()}"
            elif from_gguf:
                config, spec = shapes.config_from_gguf(from_gguf), f"gguf:{from_gguf.resolve()}"
            else:
                config, spec = shapes.config_from_file(from_config), ""
            arch, found = shapes.shapes_from_config(config)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    spec = source or spec
    body = {"name": name, "architecture": arch, "source": spec, "aliases": list(alias),
            "module_shapes": {m: list(s) for m, s in found.items()}}
    with client() as c:
        try:
            base = c.add_base(body)
        except ClientError as exc:
            fail(exc.detail)
    console.print(f"registered base [bold]{base['name']}[/bold] ({base['architecture']}, "
                  f"{len(base['module_shapes'])} adaptable modules)")
    if not spec:
        console.print("no --source: adapters on this base upload and are shape-checked, but jobs that need its "
                      "weights fail until a worker can load it by its name")


# ------------------------------------------------------------------ push / pull

def push(directory: Path = typer.Argument(..., help="A PEFT adapter folder (adapter_config.json + "
                                                     "adapter_model.safetensors)."),
         target: str = typer.Argument(..., help="namespace/name: the adapter to add a version to."),
         tag: str = typer.Option(None), base: str = typer.Option(None, help="Default: the config's base model."),
         description: str = typer.Option(None)):
    """Upload a PEFT adapter folder as the next version of namespace/name."""
    if not directory.exists():
        fail(f"{directory} does not exist")
    if not directory.is_dir():
        fail(f"{directory} is not a folder; push takes a PEFT adapter folder")
    if not (directory / "adapter_config.json").is_file():
        fail(f"{directory} has no adapter_config.json (not a PEFT adapter folder)")
    _upload("adapter", directory, None, target, tag, base, description)


@datasets_app.command("push")
def datasets_push(source: Path = typer.Argument(..., help="A JSONL file of {\"prompt\", \"completion\"} lines, or a "
                                                          "folder holding data.jsonl."),
                  target: str = typer.Argument(..., help="namespace/name: the dataset to add a version to."),
                  tag: str = typer.Option(None), description: str = typer.Option(None)):
    """Upload a JSONL file as the next version of a dataset."""
    if not source.exists():
        fail(f"{source} does not exist")
    if source.is_dir():
        if not (source / "data.jsonl").is_file():
            fail(f"{source} has no data.jsonl")
        files = {n: source / n for n in UPLOADS["dataset"] if (source / n).is_file()}
    else:
        files = {"data.jsonl": source}
    _upload("dataset", source, files, target, tag, None, description)


def _upload(object: str, directory: Path, files: dict | None, target: str, tag, base, description) -> None:
    namespace, name, ref = split_ref(target)
    if "@" in target:
        fail(f"push makes the next version itself: give {namespace}/{name} without @{ref} (and --tag to name it)")
    sizes = files or {n: directory / n for n in UPLOADS[object] if (directory / n).is_file()}
    with client() as c, _transfer_bar() as bar:
        task = bar.add_task(f"push {namespace}/{name}", total=sum(p.stat().st_size for p in sizes.values()))
        try:
            version = c.push(directory, namespace, name, tag=tag, base=base, object=object, files=files,
                             description=description, on_bytes=lambda n: bar.advance(task, n))
        except ClientError as exc:
            bar.stop()
            fail(exc.detail)
    console.print(f"pushed {object} [bold]{version['ref']}[/bold]", highlight=False)


def pull(source: str = typer.Argument(..., help="namespace/name[@ref] (ref: number, v<N>, tag, latest)."),
         directory: Path = typer.Argument(..., help="Folder to write the version's files into."),
         type: str = TYPE):
    """Download a version's files into a folder (an adapter's loads with PeftModel.from_pretrained)."""
    _pull(source, directory, _object(type))


def _pull(source: str, directory: Path, object: str | None) -> None:
    namespace, name, ref = split_ref(source)
    with client() as c:
        object, _ = _find(c, source, object)
        try:
            version = c.version(namespace, name, ref, object)
        except ClientError as exc:
            fail(exc.detail)
        with _transfer_bar() as bar:
            task = bar.add_task(f"pull {version['ref']}", total=sum(f["size"] for f in version["files"]))
            try:
                c.pull(namespace, name, str(version["number"]), directory, object=object,
                       on_bytes=lambda n: bar.advance(task, n))
            except ClientError as exc:
                bar.stop()
                fail(exc.detail)
    console.print(f"pulled {object} [bold]{version['ref']}[/bold] into {directory}", highlight=False)


@datasets_app.command("pull")
def datasets_pull(source: str, directory: Path):
    """Download a dataset version (data.jsonl) into a folder."""
    _pull(source, directory, "dataset")


@generators_app.command("pull")
def generators_pull(source: str, directory: Path):
    """Download a generator version into a folder."""
    _pull(source, directory, "generator")


# ------------------------------------------------------------------ ls / show

def ls(type: str = TYPE, namespace: str = typer.Option(None), base: str = typer.Option(None),
       q: str = typer.Option(None, "-q", help="Text to look for in names and descriptions."), as_json: bool = JSON):
    """List adapters, datasets and generators (or one type of them)."""
    _ls([_object(type)] if type else list(OBJECTS), namespace, base, q, as_json)


def _ls(objects: list[str], namespace, base, q, as_json: bool) -> None:
    items = []
    with client() as c:
        try:
            for object in objects:
                items += c.get(f"/api/v1/{PLURAL[object]}", namespace=namespace, base=base, q=q)["items"]
        except ClientError as exc:
            fail(exc.detail)
    if as_json:
        return print_json({"items": items})
    table = Table("name", "type", "base", "latest", "versions", "tags")
    for a in items:
        table.add_row(f"{a['namespace']}/{a['name']}", a["kind"], a["base"] or "", str(a["latest"] or "-"),
                      str(a["version_count"]), ", ".join(f"{t}→{n}" for t, n in sorted(a["tags"].items())))
    console.print(table)


@datasets_app.command("ls")
def datasets_ls(namespace: str = typer.Option(None), q: str = typer.Option(None, "-q"), as_json: bool = JSON):
    """List datasets."""
    _ls(["dataset"], namespace, None, q, as_json)


@generators_app.command("ls")
def generators_ls(namespace: str = typer.Option(None), base: str = typer.Option(None),
                  q: str = typer.Option(None, "-q"), as_json: bool = JSON):
    """List generators."""
    _ls(["generator"], namespace, base, q, as_json)


def show(target: str = typer.Argument(..., help="namespace/name (its versions) or namespace/name@ref (one version)."),
         type: str = TYPE, as_json: bool = JSON):
    """An object's versions, or one version: files, metrics, lineage, the job that made it."""
    _show(target, _object(type), as_json)


@datasets_app.command("show")
def datasets_show(target: str, as_json: bool = JSON):
    """A dataset's versions, or one version."""
    _show(target, "dataset", as_json)


@generators_app.command("show")
def generators_show(target: str, as_json: bool = JSON):
    """A generator's versions, or one version."""
    _show(target, "generator", as_json)


def _show(target: str, object: str | None, as_json: bool) -> None:
    namespace, name, ref = split_ref(target)
    path = None
    with client() as c:
        object, artifact = _find(c, target, object)
        path = f"/api/v1/{PLURAL[object]}/{namespace}/{name}"
        try:
            if "@" not in target:
                versions = c.get(f"{path}/versions")["items"]
                if as_json:
                    return print_json({**artifact, "versions": versions})
                return _print_artifact(object, artifact, versions)
            version = c.version(namespace, name, ref, object)
            lineage = c.get(f"{path}/versions/{version['number']}/lineage")
        except ClientError as exc:
            fail(exc.detail)
    if as_json:
        return print_json({**version, "lineage": lineage})
    _print_version(object, version, lineage)


def _print_artifact(object: str, artifact: dict, versions: list[dict]) -> None:
    on = f" on {artifact['base']}" if artifact["base"] else ""
    console.print(f"[bold]{artifact['namespace']}/{artifact['name']}[/bold] ({object}{on})"
                  f"{'  ' + escape(artifact['description']) if artifact['description'] else ''}", highlight=False)
    table = Table("version", "created", "tags", "yanked", "metrics")
    for v in versions:
        table.add_row(str(v["number"]), (v["created_at"] or "")[:19], ", ".join(v["tags"]),
                      "yes" if v["yanked"] else "", _metrics_summary(v["metrics"]))
    console.print(table)


def _print_version(object: str, version: dict, lineage: dict) -> None:
    made = f"job {version['job_id'][:8]}" if version.get("job_id") else (version.get("created_by") or "upload")
    console.print(f"[bold]{version['ref']}[/bold] ({object}{' on ' + version['base'] if version['base'] else ''})"
                  f"  tags: {', '.join(version['tags']) or '-'}  made by {made}"
                  f"  {(version['created_at'] or '')[:19]}{'  [red](yanked)[/red]' if version['yanked'] else ''}",
                  highlight=False)
    files = Table("file", "bytes", "sha256")
    for f in version["files"]:
        files.add_row(f["name"], str(f["size"]), f["sha256"][:16] + "…")
    console.print(files)
    if version["metrics"]:
        metrics = Table("metric", "value")
        for key, value in _flatten(version["metrics"]):
            metrics.add_row(key, value)
        console.print(metrics)
    for edge in lineage["parents"]:
        console.print(f"  from: {edge['relation']} {edge['object'] or ''} {edge['version'] or '(hidden)'}",
                      highlight=False)
    for edge in lineage["children"]:
        console.print(f"  to:   {edge['relation']} {edge['object'] or ''} {edge['version'] or '(hidden)'}",
                      highlight=False)


def _flatten(metrics: dict, prefix: str = ""):
    """(dotted key, short text) per leaf; a long list shows its length and ends, not every element."""
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, f"{name}.")
        elif isinstance(value, list) and len(value) > 6:
            yield name, f"{len(value)} values: {_short(value[0])} … {_short(value[-1])}"
        else:
            yield name, _short(value)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _metrics_summary(metrics: dict) -> str:
    flat = [f"{k}={v}" for k, v in _flatten(metrics) if "values:" not in v]
    text = ", ".join(flat)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------ tag / yank

def tag(target: str = typer.Argument(..., help="namespace/name@N: the version to point the tag at."),
        tag_name: str = typer.Argument(..., metavar="TAG", help="The tag (moved here if it pointed elsewhere)."),
        type: str = TYPE):
    """Point a tag (e.g. prod) at a version."""
    namespace, name, ref = split_ref(target)
    with client() as c:
        object, _ = _find(c, target, _object(type))
        try:
            number = c.version(namespace, name, ref, object)["number"]
            c.put(f"/api/v1/{PLURAL[object]}/{namespace}/{name}/tags/{tag_name}", {"version": number})
        except ClientError as exc:
            fail(exc.detail)
    console.print(f"{object} {namespace}/{name}: {tag_name} → {number}", highlight=False)


def yank(target: str = typer.Argument(..., help="namespace/name@N: the version to yank."), type: str = TYPE):
    """Yank a version: it stays readable by number (lineage keeps working) but no longer counts as latest."""
    namespace, name, ref = split_ref(target)
    if "@" not in target or not ref.isdigit():
        fail(f"yank takes one version by number: {namespace}/{name}@N")
    with client() as c:
        object, _ = _find(c, target, _object(type))
        try:
            version = c.delete(f"/api/v1/{PLURAL[object]}/{namespace}/{name}/versions/{ref}")
        except ClientError as exc:
            fail(exc.detail)
    console.print(f"yanked {object} {version['ref']}", highlight=False)
