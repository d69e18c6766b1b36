"""Every method command's parameters come from its kind's declaration: -p key=value typed by the declared field type
for every field of every kind, --wait/--no-wait with one default on every command that submits, an option and a -p
for the same field refused, and `jobs kinds KIND` showing types, defaults and descriptions."""
from __future__ import annotations

import json

import pytest
import typer.main

from hub import cli_jobs
from hub.cli import app
from hub.cli_params import parse_params
from hub.job_kinds import KINDS, describe, validate_job
from tests.api.conftest import TINY_BASE, make_adapter_dir, upload
from tests.cli.conftest import invoke

SUBMITTING = {"train", "evaluate", "merge", "transfer-kit", "transfer", "unlearn", "infer", "train-generator",
              "generate"}


def _click(*path):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def test_every_command_that_submits_takes_p_and_wait_with_one_default():
    registered = {name or fn.__name__ for name, fn in cli_jobs.COMMANDS}
    assert SUBMITTING <= registered
    defaults = {}
    for path in [(name,) for name in SUBMITTING] + [("jobs", "submit"), ("jobs", "retry")]:
        options = {opt: p for p in _click(*path).params for opt in [*p.opts, *p.secondary_opts]}
        assert "--no-wait" in options and "--wait" in options, path
        defaults[path] = options["--wait"].default
        if path != ("jobs", "retry"):
            assert "-p" in options and "--param" in options, path
    assert set(defaults.values()) == {True}, defaults


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_field_of_every_kind_has_a_description_and_takes_its_default_back_from_p(kind):
    """What `jobs kinds` prints as a field's default, given back as -p name=value, is that default again, typed as
    declared (an int stays an int, a list a list, none is None): any field of any kind can be set from the CLI."""
    schema = describe(KINDS[kind])["params_schema"]
    for name, field in schema["properties"].items():
        assert field.get("description"), f"{kind}.{name} has no description"
        if "default" not in field:
            continue
        default = field["default"]
        plain_list = isinstance(default, list) and all(str(x) == str(x).strip() and "," not in str(x) for x in default)
        text = ",".join(map(str, default)) if plain_list else json.dumps(default) if isinstance(default, list) else \
            "none" if default is None else json.dumps(default) if isinstance(default, bool) else str(default)
        assert parse_params([f"{name}={text}"], schema) == {name: default}, f"{kind}.{name}"


def test_p_values_are_typed_so_strict_params_accept_them():
    schema = describe(KINDS["merge"])["params_schema"]
    params = parse_params(["weights=1,2", "rank=4", "parameter_reweighting=false", "method=ties", "density=0.5",
                           "fit=builtin:word_sorting?n=8,builtin:caesar_shift?n=8"], schema)
    assert params == {"weights": [1.0, 2.0], "rank": 4, "parameter_reweighting": False, "method": "ties",
                      "density": 0.5, "fit": ["builtin:word_sorting?n=8", "builtin:caesar_shift?n=8"]}
    assert validate_job("merge", ["a/b@1", "a/c@1"], params, {"namespace": "t", "name": "m"})["weights"] == [1.0, 2.0]


@pytest.mark.parametrize("args, message", [
    (["train", "--base", "b", "--into", "t/x", "--task", "builtin:word_sorting", "--steps", "7", "-p", "steps=5"],
     "steps is set twice: --steps 7 and -p steps=5; give one"),
    (["transfer", "t/a@1", "--to", "b", "--into", "t/x", "-p", "target_base=c"], "target_base is set twice: --to b"),
    (["merge", "t/a", "t/b", "--into", "t/x", "-p", "weights=1,x"], "weights='x': a number"),
    (["merge", "t/a", "t/b", "--into", "t/x", "-p", "method=average"], "one of lego, linear"),
    (["unlearn", "t/a@1", "--forget", "builtin:word_sorting", "-p", "stepz=3"], "unknown parameter 'stepz'"),
])
def test_a_bad_or_doubly_set_param_is_refused_before_anything_is_sent(args, message):
    r = invoke(*args)
    assert r.exit_code == 1 and message in r.output, r.output


def test_jobs_kinds_train_shows_each_params_type_default_and_description(cli_env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    r = invoke("jobs", "kinds", "train")
    assert r.exit_code == 0, r.output
    rows = {line.strip("│ ").split("│")[0].strip(" *"): line for line in r.output.splitlines() if "│" in line}
    assert set(KINDS["train"].params.model_fields) <= set(rows), sorted(rows)
    steps = [c.strip() for c in rows["steps"].strip("│").split("│")]
    assert steps == ["* steps", "int 1..100000", "100", "optimizer steps"]
    assert [c.strip() for c in rows["base"].strip("│").split("│")][1:3] == ["str (base)", "required"]
    assert "none" in rows["checkpoint_every"] and "trajectory" in rows["checkpoint_every"]
    r = invoke("jobs", "kinds")
    assert r.exit_code == 0 and all(kind in r.output for kind in KINDS)


def test_a_method_command_sends_p_values_typed_and_no_wait_returns_at_once(cli_env, tiny_base):
    with cli_env.client() as c:
        assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
    r = invoke("train", "--base", TINY_BASE, "--task", "builtin:word_sorting?n=8", "--into", "team/t", "--steps", "3",
               "-p", "target_modules=q_proj", "-p", "use_rslora=true", "-p", "checkpoint_every=none", "--no-wait")
    assert r.exit_code == 0, r.output
    job_id = r.output.split("submitted train job ")[1].split()[0]
    params = cli_env.client().get(f"/api/v1/jobs/{job_id}").json()["params"]
    assert params["steps"] == 3 and params["target_modules"] == ["q_proj"] and params["use_rslora"] is True
    assert params["rank"] == 8  # unset options leave the declared default to the hub


def test_train_from_a_version_submits_it_as_the_input_to_continue(cli_env, tiny_base, tmp_path):
    with cli_env.client() as c:
        assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
        assert upload(c, "team", "start", make_adapter_dir(tmp_path / "start")).status_code == 201
    r = invoke("train", "--base", TINY_BASE, "--task", "builtin:word_sorting?n=8", "--into", "team/more", "--steps",
               "2", "--from", "team/start@1", "--no-wait")
    assert r.exit_code == 0, r.output
    job_id = r.output.split("submitted train job ")[1].split()[0]
    assert cli_env.client().get(f"/api/v1/jobs/{job_id}").json()["inputs"] == ["team/start@1"]


@pytest.mark.parametrize("command", sorted(SUBMITTING))
def test_each_method_commands_options_have_the_declared_type_help_and_no_default_of_their_own(command):
    """An option named after a field of the kind is typed as the field is declared, says the field's description,
    and is unset unless given (the hub fills in the declared default) or required, so the CLI cannot drift from the
    declaration."""
    import inspect

    from typer.models import OptionInfo

    functions = {name or fn.__name__: fn for name, fn in cli_jobs.COMMANDS}
    kind = command.replace("-", "_")
    properties = describe(KINDS[kind])["params_schema"]["properties"]
    expected = {"integer": "int", "number": "float", "string": "str", "array": "list[str]"}
    checked = 0
    for name, parameter in inspect.signature(functions[command]).parameters.items():
        field, info = properties.get(name), parameter.default
        if field is None or not isinstance(info, OptionInfo) or (command, name) == ("infer", "base") \
                or name == "weights":
            continue  # infer's --base is a flag (TARGET is a base); --weights is read as the field's list
        declared = [v.get("type") for v in field.get("anyOf", [field]) if v.get("type") != "null"][0]
        assert parameter.annotation == expected[declared], (command, name)
        assert field["description"] in info.help and info.default in (None, ...), (command, name)
        checked += 1
    assert checked >= 1, command
