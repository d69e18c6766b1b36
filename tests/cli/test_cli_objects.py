"""Registry commands for every object: datasets push/pull/ls/show, tag, yank, bases ls/show, --json, and the
one-line answers to a missing folder or a data dir without a hub."""
from __future__ import annotations

import json

import pytest

from tests.api.conftest import make_adapter_dir
from tests.cli.conftest import invoke

ROWS = [{"prompt": "2+2=", "completion": "4"}, {"prompt": "3+3=", "completion": "6"}]


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "forget.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_a_dataset_pushed_from_a_jsonl_file_lists_shows_and_pulls_back_byte_for_byte(cli_env, data_file, tmp_path):
    r = invoke("datasets", "push", data_file, "team/sums", "--tag", "v-one")
    assert r.exit_code == 0, r.output
    assert "pushed dataset team/sums@1" in r.output
    r = invoke("datasets", "ls", "--json")
    assert r.exit_code == 0, r.output
    assert [(d["namespace"], d["name"], d["tags"]) for d in json.loads(r.output)["items"]] == [
        ("team", "sums", {"v-one": 1})]
    # `show` and `pull` find a dataset without being told its type
    r = invoke("show", "team/sums@v-one")
    assert r.exit_code == 0 and "(dataset)" in r.output and "data.jsonl" in r.output and "records" in r.output
    r = invoke("pull", "team/sums@1", tmp_path / "copy")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "copy" / "data.jsonl").read_bytes() == data_file.read_bytes()


def test_ls_without_a_type_lists_adapters_and_datasets_with_their_type(cli_env, data_file, tmp_path):
    assert invoke("bases", "add", "tiny-llama", "--tiny", "llama").exit_code == 0
    assert invoke("push", make_adapter_dir(tmp_path / "a"), "team/demo").exit_code == 0
    assert invoke("datasets", "push", data_file, "team/sums").exit_code == 0
    items = json.loads(invoke("ls", "--json").output)["items"]
    assert sorted((i["kind"], i["name"]) for i in items) == [("adapter", "demo"), ("dataset", "sums")]
    only = json.loads(invoke("ls", "--type", "dataset", "--json").output)["items"]
    assert [i["name"] for i in only] == ["sums"]
    r = invoke("ls", "--type", "model")
    assert r.exit_code == 1 and "adapter, dataset, generator" in r.output


def test_tag_moves_and_yank_hides_a_version_from_latest(cli_env, data_file):
    for _ in range(2):
        assert invoke("datasets", "push", data_file, "team/sums").exit_code == 0
    r = invoke("tag", "team/sums@1", "prod")
    assert r.exit_code == 0 and "prod → 1" in r.output
    r = invoke("yank", "team/sums@2")
    assert r.exit_code == 0 and "yanked dataset team/sums@2" in r.output
    shown = json.loads(invoke("datasets", "show", "team/sums", "--json").output)
    assert shown["tags"] == {"prod": 1} and shown["latest"] == 1
    assert [v["yanked"] for v in shown["versions"]] == [False, True]
    r = invoke("yank", "team/sums@prod")  # a tag is not a version number: nothing is yanked
    assert r.exit_code == 1 and "team/sums@N" in r.output


def test_push_of_a_missing_folder_says_it_is_missing(cli_env, tmp_path):
    r = invoke("push", tmp_path / "nope", "team/demo")
    assert r.exit_code == 1 and f"{tmp_path / 'nope'} does not exist" in r.output
    r = invoke("datasets", "push", tmp_path / "nope.jsonl", "team/demo")
    assert r.exit_code == 1 and "does not exist" in r.output


def test_bases_ls_and_show_read_back_what_bases_add_registered(cli_env):
    assert invoke("bases", "add", "tiny-llama", "--tiny", "llama").exit_code == 0
    r = invoke("bases", "ls")
    assert r.exit_code == 0 and "tiny-llama" in r.output and "llama" in r.output
    base = json.loads(invoke("bases", "show", "tiny-llama", "--json").output)
    assert base["name"] == "tiny-llama" and base["module_shapes"]
    r = invoke("bases", "show", "tiny-llama")
    assert r.exit_code == 0 and next(iter(base["module_shapes"])) in r.output
    r = invoke("bases", "show", "nothing")
    assert r.exit_code == 1 and "nothing" in r.output


@pytest.mark.parametrize("command", [["token", "create"], ["token", "revoke", "ada_x"], ["gc", "--dry-run"]])
def test_a_data_dir_without_a_hub_is_one_line_naming_data_dir_and_leaves_no_file(tmp_path, monkeypatch, command):
    monkeypatch.delenv("ADAPTARIUM_DATABASE_URL", raising=False)
    monkeypatch.setenv("ADAPTARIUM_DATA_DIR", str(tmp_path / "empty"))
    r = invoke(*command)
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and "--data-dir" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "empty").exists()
