"""Registry services on both databases: numbering, idempotent publication, refs, tags, lineage, tokens."""
from __future__ import annotations

import pytest

from hub import registry
from hub.registry import Conflict, FileEntry, Invalid, NotFound

FILES = [FileEntry("adapter_config.json", "a" * 64, 10), FileEntry("adapter_model.safetensors", "b" * 64, 20)]


@pytest.fixture
def base_id(session_factory):
    with session_factory() as s:
        base = registry.create_base(s, "base-x", "llama", {"m": [4, 4]}, aliases=["org/base-x"])
        s.commit()
        return base.id


def publish(session_factory, base_id, name="a", **kw):
    return registry.create_version(session_factory, kind="adapter", namespace="ns", name=name, base_id=base_id,
                                   peft_config={"r": 1}, files=FILES, **kw)


def test_failed_publication_leaves_no_version_and_no_gap(session_factory, base_id):
    assert publish(session_factory, base_id).number == 1
    with pytest.raises(Conflict):  # same adapter, other base: refused inside the transaction
        registry.create_version(session_factory, kind="adapter", namespace="ns", name="a", base_id=None,
                                peft_config=None, files=FILES)
    with pytest.raises(Invalid):
        publish(session_factory, base_id, parents=[(1, "copied_from")])
    assert publish(session_factory, base_id).number == 2


def test_a_database_error_mid_transaction_rolls_the_number_back(session_factory, base_id):
    """The lineage row points at a version that does not exist: the FK fails after the version row was flushed."""
    from sqlalchemy.exc import IntegrityError

    assert publish(session_factory, base_id).number == 1
    with pytest.raises(IntegrityError):
        publish(session_factory, base_id, parents=[(999_999, "trained_from")])
    with session_factory() as s:
        assert [v.number for v in registry.list_versions(s, registry.get_artifact(s, "adapter", "ns", "a"))] == [1]
    assert publish(session_factory, base_id).number == 2


def test_publication_with_a_job_id_is_idempotent(session_factory, base_id):
    first = publish(session_factory, base_id, job_id="job-1")
    again = publish(session_factory, base_id, job_id="job-1")
    assert (first.id, first.number) == (again.id, again.number)
    assert publish(session_factory, base_id, job_id="job-2").number == 2


def test_refs_resolve_by_latest_number_v_and_tag_and_yank_hides_from_latest(session_factory, base_id):
    for _ in range(3):
        publish(session_factory, base_id)
    with session_factory() as s:
        adapter = registry.get_artifact(s, "adapter", "ns", "a")
        registry.set_tag(s, adapter, "prod", 2)
        registry.yank(s, adapter, 3)
        s.commit()
        resolve = lambda ref: registry.resolve_version(s, "adapter", "ns", "a", ref).number
        assert [resolve("latest"), resolve("main"), resolve("3"), resolve("v1"), resolve("prod")] == [2, 2, 3, 1, 2]
        with pytest.raises(NotFound, match="'nope'"):
            resolve("nope")
        with pytest.raises(Invalid):
            registry.set_tag(s, adapter, "latest", 1)


def test_lineage_lists_parents_and_children(session_factory, base_id):
    left, right = publish(session_factory, base_id, name="l"), publish(session_factory, base_id, name="r")
    child = publish(session_factory, base_id, name="m", parents=[(left.id, "merged_from"), (right.id, "merged_from")])
    with session_factory() as s:
        v = registry.resolve_version(s, "adapter", "ns", "m", "1")
        edge = {"object": "adapter", "relation": "merged_from", "hidden": False}
        assert registry.lineage_of(s, v)["parents"] == [{"version": "ns/l@1", **edge}, {"version": "ns/r@1", **edge}]
        parent = registry.resolve_version(s, "adapter", "ns", "l", "1")
        assert registry.lineage_of(s, parent)["children"] == [{"version": "ns/m@1", **edge}]
        hidden = registry.lineage_of(s, v, readable=lambda namespace: namespace.name != "ns")["parents"]
        assert hidden == [{"version": None, "object": None, "relation": None, "hidden": True}] * 2
    assert child.number == 1


def test_bases_are_found_by_name_or_alias_and_names_are_unique(session_factory, base_id):
    with session_factory() as s:
        assert registry.find_base(s, "org/base-x").id == base_id
        with pytest.raises(Conflict):
            registry.create_base(s, "other", "llama", {"m": [1, 1]}, aliases=["base-x"])


def test_concurrent_publications_to_a_new_adapter_get_gapless_numbers(session_factory, base_id, db_url):
    """Many writers racing to create the first version of one adapter each get a distinct number, no gaps."""
    from concurrent.futures import ThreadPoolExecutor

    n = 10 if db_url.startswith("sqlite") else 50
    with ThreadPoolExecutor(max_workers=n) as pool:
        numbers = list(pool.map(lambda i: publish(session_factory, base_id, name="race").number, range(n)))
    assert sorted(numbers) == list(range(1, n + 1))
    with session_factory() as s:
        assert registry.get_artifact(s, "adapter", "ns", "race").version_count == n


def test_tags_move_to_the_version_they_are_set_to(session_factory, base_id):
    publish(session_factory, base_id)
    publish(session_factory, base_id)
    with session_factory() as s:
        adapter = registry.get_artifact(s, "adapter", "ns", "a")
        registry.set_tag(s, adapter, "prod", 1)
        registry.set_tag(s, adapter, "prod", 2)
        s.commit()
        assert registry.resolve_version(s, "adapter", "ns", "a", "prod").number == 2
        with pytest.raises(NotFound):
            registry.set_tag(s, adapter, "prod", 9)
