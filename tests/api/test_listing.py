"""Listings cost a constant number of SQL statements, whatever they hold, and carry summaries, not whole configs.

Issue 11: listing 200 versions ran 203 statements (one tag query per version) and embedded every version's PEFT
config. The statements are counted with an SQLAlchemy event listener on the live hub's engine, so this pins down
the queries a request makes (behaviour), not how long it takes.
"""
from __future__ import annotations

import contextlib
import hashlib

from sqlalchemy import event

from hub import registry
from hub.api import views
from hub.registry import FileEntry

SHAPES = {"model.layers.0.self_attn.q_proj": [8, 8], "model.layers.0.self_attn.v_proj": [8, 8]}
CONFIG = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
          "base_model_name_or_path": "list-base", "lora_dropout": 0.0, "rank_pattern": {}, "alpha_pattern": {}}


@contextlib.contextmanager
def statements(engine):
    """The SQL statements run on `engine` inside the block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def publish(hub, name: str, count: int, namespace: str = "lists") -> None:
    """`count` versions of namespace/name straight through the registry (the listing only reads their rows)."""
    with hub.app.state.session_factory() as s:
        base_id = registry.find_base(s, "list-base").id
    for i in range(count):
        sha = hashlib.sha256(f"{namespace}/{name}/{i}".encode()).hexdigest()
        registry.create_version(hub.app.state.session_factory, kind="adapter", namespace=namespace, name=name,
                                base_id=base_id, peft_config={**CONFIG, "r": 4 + i % 2},
                                files=[FileEntry("adapter_model.safetensors", sha, 100 + i)],
                                metrics={"accuracy": i / 100})


def register_base(hub) -> None:
    with hub.client() as c:
        assert c.post("/api/v1/bases", json={"name": "list-base", "architecture": "synthetic",
                                             "module_shapes": SHAPES}).status_code == 201


def test_listing_versions_runs_the_same_statements_for_3_versions_as_for_40(hub):
    register_base(hub)
    publish(hub, "small", 3)
    publish(hub, "large", 40)
    with hub.client() as c:
        for name, count in (("small", 3), ("large", 40)):
            for n in range(1, count + 1, 2):  # a tag on every other version: tags must not cost a query each
                assert c.put(f"/api/v1/adapters/lists/{name}/tags/t{n}", json={"version": n}).status_code == 200
        counted = {}
        for name, count in (("small", 3), ("large", 40)):
            with statements(hub.app.state.engine) as seen:
                r = c.get(f"/api/v1/adapters/lists/{name}/versions")
            assert r.status_code == 200 and len(r.json()["items"]) == count
            counted[name] = len(seen)
    assert counted["small"] == counted["large"] <= 5, counted  # token, adapter, versions, tags (+ last-used write)


def test_a_version_list_entry_summarises_the_config_and_keeps_tags_files_and_metrics(hub):
    register_base(hub)
    publish(hub, "entries", 3)
    with hub.client() as c:
        c.put("/api/v1/adapters/lists/entries/tags/prod", json={"version": 2})
        c.put("/api/v1/adapters/lists/entries/tags/canary", json={"version": 2})
        c.put("/api/v1/adapters/lists/entries/tags/old", json={"version": 1})
        listed = c.get("/api/v1/adapters/lists/entries/versions")
        one = c.get("/api/v1/adapters/lists/entries/versions/2").json()
    assert listed.headers["content-type"] == "application/json"
    items = views.VersionList.model_validate_json(listed.content).model_dump()["items"]  # the declared shape
    assert items == listed.json()["items"]
    assert [v["number"] for v in items] == [1, 2, 3]
    assert [v["tags"] for v in items] == [["old"], ["canary", "prod"], []]
    assert all("peft_config" not in v for v in items)
    assert items[1]["config_summary"] == {"peft_type": "LORA", "r": 5, "lora_alpha": 8, "target_module_count": 2}
    assert items[1]["ref"] == "lists/entries@2" and items[1]["base"] == "list-base"
    assert items[1]["metrics"] == {"accuracy": 0.01} and items[1]["files"][0]["size"] == 101
    # the single version keeps the whole config and agrees with its list entry on everything else
    assert one["peft_config"] == {**CONFIG, "r": 5} and one["tags"] == ["canary", "prod"]
    assert {k: v for k, v in one.items() if k != "peft_config"} == \
        {k: v for k, v in items[1].items() if k != "config_summary"}


def test_listing_adapters_runs_the_same_statements_for_2_adapters_as_for_12(hub):
    register_base(hub)
    for i in range(2):
        publish(hub, f"a{i}", 1, namespace="few")
    for i in range(12):
        publish(hub, f"a{i}", 1, namespace="many")
    counted = {}
    with hub.client() as c:
        c.put("/api/v1/adapters/many/a3/tags/prod", json={"version": 1})
        for namespace, count in (("few", 2), ("many", 12)):
            with statements(hub.app.state.engine) as seen:
                items = c.get("/api/v1/adapters", params={"namespace": namespace}).json()["items"]
            assert len(items) == count and all(a["latest"] == 1 for a in items)
            counted[namespace] = len(seen)
        assert {a["name"]: a["tags"] for a in items}["a3"] == {"prod": 1}
    assert counted["few"] == counted["many"], counted


def test_a_pattern_target_counts_no_modules_odd_values_are_left_out_and_a_dataset_has_no_summary(hub):
    register_base(hub)
    with hub.app.state.session_factory() as s:
        base_id = registry.find_base(s, "list-base").id
    factory = hub.app.state.session_factory
    registry.create_version(factory, kind="adapter", namespace="lists", name="pattern", base_id=base_id,
                            peft_config={**CONFIG, "target_modules": r".*\.(q|v)_proj", "lora_alpha": 2.5},
                            files=[FileEntry("adapter_model.safetensors", "a" * 64, 1)])
    registry.create_version(factory, kind="adapter", namespace="lists", name="pattern", base_id=base_id,
                            peft_config={**CONFIG, "r": "eight", "peft_type": 7},  # no upload passes this: no 500
                            files=[FileEntry("adapter_model.safetensors", "c" * 64, 1)])
    registry.create_version(factory, kind="dataset", namespace="lists", name="rows", base_id=None, peft_config=None,
                            files=[FileEntry("data.jsonl", "b" * 64, 1)], metrics={"records": 3})
    with hub.client() as c:
        pattern, rows = (views.VersionList.model_validate_json(c.get(f"/api/v1/{path}/versions").content)
                         .model_dump()["items"] for path in ("adapters/lists/pattern", "datasets/lists/rows"))
    assert pattern[0]["config_summary"] == {"peft_type": "LORA", "r": 4, "lora_alpha": 2.5, "target_module_count": None}
    assert pattern[1]["config_summary"] == {"peft_type": None, "r": None, "lora_alpha": 8, "target_module_count": 2}
    assert rows[0]["config_summary"] is None and rows[0]["metrics"] == {"records": 3}


def test_reading_a_version_by_name_is_one_statement_and_still_refuses_what_the_caller_may_not_read(hub):
    register_base(hub)
    publish(hub, "open", 2)
    publish(hub, "secret", 1, namespace="hidden")
    with hub.client() as c:
        assert c.post("/api/v1/namespaces", json={"name": "hidden", "private": True}).status_code == 201
        c.put("/api/v1/adapters/lists/open/tags/prod", json={"version": 1})
        for ref, number in (("2", 2), ("prod", 1), ("latest", 2), ("v1", 1)):
            c.get(f"/api/v1/adapters/lists/open/versions/{ref}")  # the token is verified (and cached) here
            with statements(hub.app.state.engine) as seen:
                r = c.get(f"/api/v1/adapters/lists/open/versions/{ref}")
            assert r.status_code == 200 and r.json()["number"] == number
            assert len(seen) == 1, seen  # the version with its adapter and its tags (test_tag_statements.py)
        assert c.get("/api/v1/adapters/lists/open/versions/9").status_code == 404
        assert "no adapter lists/none" in c.get("/api/v1/adapters/lists/none/versions/1").json()["detail"]
    other = hub.token("lists", "read")
    with hub.client(other) as c:
        assert c.get("/api/v1/adapters/hidden/secret/versions/1").status_code == 404  # as if not there
    with hub.client(None) as c:
        assert c.get("/api/v1/adapters/hidden/secret/versions/1").status_code == 404
