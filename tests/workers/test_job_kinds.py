"""The job-kind spec is the one source: every kind has a worker module, its params are its method's config (so the
API accepts exactly the range the worker takes), it publishes only the lineage it declares, and every registry object
any kind names is authorised at submit — tests generated from hub.job_kinds.KINDS, so a new kind is covered the
moment its spec line exists (and fails here until it has an example job below)."""
from __future__ import annotations

import importlib

import pytest

from hub.job_kinds import KINDS, ref_fields, references, validate_job
from hub.job_params import JobParamsError
from tests.api.conftest import TINY_BASE, make_adapter_dir, upload

# One valid job per kind, naming every reference field its params have (checked below). "pub" objects are public.
EXAMPLES = {
    "train": ([], {"base": TINY_BASE, "dataset": "pub/data@1"}),
    "evaluate": (["pub/a@1"], {"dataset": "pub/data@1"}),
    "merge": (["pub/a@1", "pub/b@1"], {"method": "linear", "fit": ["pub/data@1", "builtin:word_sorting?n=8"]}),
    "noop": ([], {}),
    "transfer_kit": (["pub/a@1"], {"dataset": "pub/data@1", "seeds": 2}),
    "transfer": (["pub/a@1"], {"target_base": TINY_BASE, "kit": "pub/kit@1", "evaluate": "pub/data@1"}),
    "unlearn": (["pub/a@1"], {"forget": "pub/data@1", "reference": "pub/data@1", "min_forget_examples": 4}),
    "infer": (["pub/a@1"], {"prompts": ["1+1="]}),
    "train_generator": (["pub/t1@1", "pub/t2@1"], {"condition": "text", "descriptions": ["one", "two"]}),
    "generate": (["pub/gen@1"], {"examples": "pub/data@1"}),
}


def _output(kind):
    return {"namespace": "team", "name": "out"} if KINDS[kind].publishes else None


def test_every_kind_has_a_worker_module_and_an_example_naming_all_its_references():
    assert set(EXAMPLES) == set(KINDS)
    for kind, spec in KINDS.items():
        assert callable(importlib.import_module(f"workers.kinds.{kind}").run)
        inputs, params = EXAMPLES[kind]
        validated = validate_job(kind, inputs, params, _output(kind))
        named = {r.where.split(".", 1)[-1].split("[", 1)[0] for r in references(spec, inputs, validated)}
        object_fields = {name for name, marker in ref_fields(spec.params).items() if marker.object != "base"}
        assert object_fields <= named, f"{kind}: example leaves out {object_fields - named}"


LIMITS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minLength", "maxLength", "minItems",
          "maxItems", "enum", "default", "description")
METHOD_KINDS = [k for k, s in KINDS.items() if s.method_config is not None]


def _numeric(schema: dict) -> dict:
    """The bounds of a number field, looking inside Optional (anyOf [number, null])."""
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("type") in ("integer", "number"):
            return option
    return {}


def test_every_method_kind_extends_its_method_config():
    assert {"train", "merge", "transfer_kit", "transfer", "unlearn", "train_generator", "generate"} <= set(METHOD_KINDS)
    for kind in METHOD_KINDS:
        assert issubclass(KINDS[kind].params, KINDS[kind].method_config)


@pytest.mark.parametrize("kind", METHOD_KINDS)
def test_the_api_accepts_exactly_the_range_the_method_config_takes(kind):
    """For every numeric field of the method's config, the value at each bound and the value just past it get the
    same answer from the API (validate_job) and from the config the worker builds: the min_forget_examples bug (the
    API took 2, the worker refused below 4) cannot come back, whatever kind or field."""
    spec, config = KINDS[kind], KINDS[kind].method_config
    inputs, example = EXAMPLES[kind]
    api_schema = spec.params.model_json_schema()["properties"]
    for name, field in config.model_json_schema()["properties"].items():
        assert {k: api_schema[name].get(k) for k in LIMITS} == {k: field.get(k) for k in LIMITS}, f"{kind}.{name}"
        bounds = _numeric(field)
        step = 1 if bounds.get("type") == "integer" else 1e-9
        probes = [bounds[k] + d for k, d in (("minimum", 0), ("minimum", -step), ("exclusiveMinimum", step),
                                             ("exclusiveMinimum", 0), ("maximum", 0), ("maximum", step),
                                             ("exclusiveMaximum", -step), ("exclusiveMaximum", 0)) if k in bounds]
        for value in probes:
            value = int(value) if bounds["type"] == "integer" else float(value)
            params = {**example, name: value}
            try:
                config.model_validate({k: v for k, v in params.items() if k in config.model_fields})
                worker_takes = True
            except ValueError:
                worker_takes = False
            try:
                validate_job(kind, inputs, params, _output(kind))
                api_takes = True
            except JobParamsError:
                api_takes = False
            assert api_takes == worker_takes, f"{kind}.{name}={value}: API {api_takes}, worker {worker_takes}"


def test_a_new_kind_is_its_method_config_plus_one_spec_line():
    """params_for makes a kind's params on its spec line: the config's fields, limits and descriptions, the registry
    objects the job names (references, lineage), strict types; schema, CLI and checks read it like any other."""
    from pydantic import Field

    from generation.config import GenerateConfig
    from hub.cli_params import parse_params
    from hub.job_kinds import KindSpec, describe
    from hub.job_params import params_for, ref

    spec = KindSpec("demo", params_for(GenerateConfig, examples=(ref("dataset", relation="conditioned_on"),
                                                                 Field(description="task examples"))),
                    (1, 1), "adapter", "gpu", "a kind in one line", relation="generated_by", input_object="generator")
    described = describe(spec)
    assert spec.method_config is GenerateConfig and spec.declared_relations == ("conditioned_on", "generated_by")
    assert set(GenerateConfig.model_fields) | {"examples"} == set(described["params_schema"]["properties"])
    assert described["references"]["examples"] == {"object": "dataset", "relation": "conditioned_on",
                                                   "builtin": False}
    params = parse_params(["examples=team/d@1", "samples=3"], described["params_schema"])
    parsed = spec.params.model_validate(params)
    assert parsed.samples == 3 and [r.where for r in references(spec, ["team/gen@1"], parsed.model_dump())] == [
        "inputs[0]", "params.examples"]
    for bad in ({"examples": "team/d@1", "samples": 0}, {"examples": "team/d@1", "samples": "3"},
                {"examples": "not a ref"}):
        with pytest.raises(ValueError):
            spec.params.model_validate(bad)


def test_min_forget_examples_below_the_workers_minimum_is_refused_at_submit():
    from unlearning.config import UnlearnConfig

    inputs, params = EXAMPLES["unlearn"]
    with pytest.raises(ValueError):
        UnlearnConfig(min_forget_examples=3)
    with pytest.raises(JobParamsError, match="params.min_forget_examples"):
        validate_job("unlearn", inputs, {**params, "min_forget_examples": 3}, _output("unlearn"))


def _published_relations(module_name: str, seen: set | None = None) -> set[str]:
    """Lineage relations a worker module writes into its outputs: `relation="..."` and the relation of each
    (object, ref, relation) in a `parents=[...]`, in the module and the workers.kinds modules it imports."""
    import ast
    from pathlib import Path

    seen = seen if seen is not None else set()
    if module_name in seen:
        return set()
    seen.add(module_name)
    tree = ast.parse(Path(importlib.import_module(module_name).__file__).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "relation" and isinstance(node.value, ast.Constant):
            found.add(node.value.value)
        if isinstance(node, ast.keyword) and node.arg == "parents":
            for item in ast.walk(node.value):
                if isinstance(item, ast.Tuple) and len(item.elts) == 3 and isinstance(item.elts[2], ast.Constant):
                    found.add(item.elts[2].value)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workers.kinds.") \
                and node.module != "workers.kinds.base":
            found |= _published_relations(node.module, seen)
    return found


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_relation_a_kinds_worker_module_publishes_is_declared_by_the_kind(kind):
    published = _published_relations(f"workers.kinds.{kind}")
    assert published <= set(KINDS[kind].declared_relations), f"{kind} publishes undeclared {published}"


def test_the_runner_refuses_a_result_the_kind_does_not_declare():
    """The runner calls check_published before it stores a version: an undeclared edge or object fails the job."""
    from hub.job_kinds import RELATIONS

    KINDS["merge"].check_published("adapter", ["merged_from", "fitted_on"])
    with pytest.raises(ValueError, match="lineage forgets, which its KindSpec does not declare"):
        KINDS["merge"].check_published("adapter", ["merged_from", "forgets"])
    with pytest.raises(ValueError, match="published a result of type 'dataset'"):
        KINDS["merge"].check_published("dataset", ["merged_from"])
    KINDS["transfer_kit"].check_published("dataset", ["seeds_for"])
    assert set(RELATIONS) == {r for spec in KINDS.values() for r in spec.declared_relations}
    assert "check_published" in importlib.import_module("workers.runner")._publish.__code__.co_names


def test_the_registry_stores_only_relations_some_kind_declares(tmp_path):
    from hub import registry

    with pytest.raises(registry.Invalid, match="unknown lineage relation 'copied_from'"):
        registry.create_version(None, kind="adapter", namespace="t", name="x", base_id=None, peft_config=None,
                                files=[], parents=[(1, "copied_from")])


def test_ties_without_density_is_refused_at_validation():
    from hub.job_params import JobParamsError

    with pytest.raises(JobParamsError, match="needs a density"):
        validate_job("merge", ["a/b@1", "a/c@1"], {"method": "ties"}, {"namespace": "t", "name": "m"})


def test_non_finite_numbers_are_refused_in_params():
    from hub.job_params import JobParamsError

    with pytest.raises(JobParamsError, match="params.lora_alpha"):
        validate_job("train", [], {"base": "b", "task": "builtin:word_sorting", "lora_alpha": float("inf")},
                     {"namespace": "t", "name": "m"})


@pytest.fixture(scope="module")
def private_world(tmp_path_factory, tiny_base):
    """A hub whose 'secret' namespace is private and holds one object of each type; 'pub' holds the same publicly."""
    import redis

    from tests.api.conftest import start_hub

    redis.Redis.from_url("redis://127.0.0.1:6379/8").flushdb()  # jobs queue here; no worker runs them
    tmp = tmp_path_factory.mktemp("kinds-hub")
    live, stop = start_hub(tmp, ADAPTARIUM_BROKER_URL="redis://127.0.0.1:6379/8")
    adapter_dir = make_adapter_dir(tmp / "adapter")
    with live.client() as c:
        assert c.post("/api/v1/bases", json=tiny_base[2]).status_code == 201
        assert c.post("/api/v1/namespaces", json={"name": "secret", "private": True}).status_code in (200, 201)
        for ns in ("pub", "secret"):
            for name in ("a", "b"):
                assert upload(c, ns, name, adapter_dir).status_code == 201
            rows = b"".join(b'{"prompt": "%d+1=", "completion": "%d"}\n' % (i, i + 1) for i in range(4))
            r = c.post(f"/api/v1/datasets/{ns}/data/versions", files={"data.jsonl": ("data.jsonl", rows)})
            assert r.status_code == 201, r.text
    _add_kits(live)
    yield live
    stop()


def _add_kits(live):
    """Objects only jobs make, in each namespace, as those jobs publish them: a transfer kit (kit files,
    discriminates_for a@1), two adapters with trajectories (checkpoints/) and a generator. Submit checks read only
    the versions' rows and file lists, so the blobs need not exist."""
    from hub import registry
    from hub.registry import FileEntry

    factory = live.app.state.session_factory

    def entries(*names):
        return [FileEntry(n, f"{i:064x}", 1) for i, n in enumerate(names)]

    for ns in ("pub", "secret"):
        with factory() as s:
            source = registry.resolve_version(s, "adapter", ns, "a", "1")
            source_id, base_id, config = source.id, source.artifact.base_id, source.peft_config
        adapter = ("adapter_config.json", "adapter_model.safetensors")
        registry.create_version(factory, kind="adapter", namespace=ns, name="kit", base_id=base_id,
                                peft_config=config, files=entries(*adapter, "kit/kit.json", "kit/seeds.jsonl"),
                                parents=[(source_id, "discriminates_for")])
        for name in ("t1", "t2"):
            registry.create_version(factory, kind="adapter", namespace=ns, name=name, base_id=base_id,
                                    peft_config=config, files=entries(*adapter, "checkpoints/step-1/" + adapter[1]))
        registry.create_version(factory, kind="generator", namespace=ns, name="gen", base_id=base_id,
                                peft_config=None, files=entries("generator_config.json", "generator.safetensors"),
                                metrics={"condition": "hidden_state"})


def _private_variants(kind):
    """The example job with one reference at a time moved into the private namespace."""
    spec = KINDS[kind]
    inputs, params = EXAMPLES[kind]
    for reference in references(spec, inputs, validate_job(kind, inputs, params, _output(kind))):
        if reference.object == "base":
            continue
        moved = reference.value.replace("pub/", "secret/", 1)
        if reference.where.startswith("inputs"):
            index = int(reference.where[len("inputs["):-1])
            yield reference.where, [moved if i == index else r for i, r in enumerate(inputs)], params
        else:
            name = reference.where.split(".", 1)[1].split("[", 1)[0]
            value = params[name]
            changed = [v.replace("pub/", "secret/", 1) for v in value] if isinstance(value, list) else moved
            yield reference.where, inputs, {**params, name: changed}


CASES = [(kind, where, inputs, params) for kind in EXAMPLES for where, inputs, params in _private_variants(kind)]


@pytest.mark.parametrize("kind, where, inputs, params", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_reference_into_a_private_namespace_is_403_and_queues_nothing(private_world, kind, where, inputs, params):
    writes_to = "team" if KINDS[kind].publishes or not EXAMPLES[kind][0] else "pub"  # evaluate: onto its input
    token = private_world.token(writes_to, "write")
    before = private_world.scalar("SELECT count(*) FROM jobs")
    with private_world.client(token) as c:
        public = c.post("/api/v1/jobs", json={"kind": kind, "inputs": EXAMPLES[kind][0], "params": EXAMPLES[kind][1],
                                              "output": _output(kind)})
        assert public.status_code == 202, public.text  # the same job on public objects is fine...
        r = c.post("/api/v1/jobs", json={"kind": kind, "inputs": inputs, "params": params, "output": _output(kind)})
    assert r.status_code == 403, r.text  # ...but not once one reference is private
    assert "'secret'" in r.json()["detail"]
    assert private_world.scalar("SELECT count(*) FROM jobs") == before + 1


def test_job_kinds_lists_every_kind_with_its_schema_and_references(private_world):
    with private_world.client(None) as c:
        items = {k["name"]: k for k in c.get("/api/v1/job-kinds").json()["items"]}
    assert set(items) == set(KINDS)
    assert items["train"]["references"]["dataset"] == {"object": "dataset", "relation": "trained_from",
                                                        "builtin": False}
    assert items["merge"]["inputs"] == {"min": 2, "max": 64, "object": "adapter"}
    assert "parameter_norm" in items["merge"]["params_schema"]["properties"]
    assert items["evaluate"]["output"] == "metrics" and items["noop"]["queue"] == "cpu"
    assert items["transfer_kit"]["produces"] == ["adapter", "dataset"]
    assert items["transfer_kit"]["relations"] == ["discriminates_for", "seeds_for", "trained_from"]
    steps = items["train"]["params_schema"]["properties"]["steps"]
    assert (steps["minimum"], steps["maximum"], steps["default"], steps["description"]) == (1, 100_000, 100,
                                                                                            "optimizer steps")
    assert items["train"]["params_schema"]["properties"]["target_modules"]["default"] == ["q_proj", "v_proj"]
    assert {"base", "steps", "task", "dataset"} <= set(items["train"]["essential"])
    assert "grad_accum" not in items["train"]["essential"]


def test_lineage_and_job_views_hide_what_the_caller_may_not_read(private_world, tmp_path):
    """A public version made from a private one shows that parent as hidden (no name, kind or relation) to anyone
    who may not read it; the job that made it is listed and shown only to callers who may read all it touches."""
    from hub import registry
    from hub.registry import FileEntry

    with private_world.app.state.session_factory() as s:
        parent = registry.resolve_version(s, "dataset", "secret", "data", "1")
        parent_id, base_id = parent.id, registry.find_base(s, TINY_BASE).id
    registry.create_version(private_world.app.state.session_factory, kind="adapter", namespace="pub", name="derived",
                            base_id=base_id, peft_config=None, files=[FileEntry("x", "0" * 64, 0)],
                            parents=[(parent_id, "trained_from")])
    url = "/api/v1/adapters/pub/derived/versions/1/lineage"
    with private_world.client(None) as anonymous:
        assert anonymous.get(url).json()["parents"] == [{"version": None, "object": None,
                                                         "relation": None, "hidden": True}]
    with private_world.client() as admin:
        assert admin.get(url).json()["parents"][0]["version"] == "secret/data@1"
        job = admin.post("/api/v1/jobs", json={"kind": "train", "output": "pub/from-secret",
                                               "params": {"base": TINY_BASE, "dataset": "secret/data@1"}}).json()
        assert job["id"] in {j["id"] for j in admin.get("/api/v1/jobs").json()["items"]}
    with private_world.client(None) as anonymous:
        assert job["id"] not in {j["id"] for j in anonymous.get("/api/v1/jobs").json()["items"]}
        assert anonymous.get(f"/api/v1/jobs/{job['id']}").status_code == 404
        assert anonymous.get(f"/api/v1/jobs/{job['id']}/events").status_code == 404


def test_openapi_documents_the_shapes_the_dashboard_reads(private_world):
    with private_world.client(None) as c:
        spec = c.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"JobView", "EventList", "VersionView", "LineageView", "LineageEdge", "ArtifactView", "BaseView"} <= set(schemas)
    assert set(schemas["LineageEdge"]["properties"]) == {"version", "object", "relation", "hidden"}
    version = spec["paths"]["/api/v1/adapters/{ns}/{name}/versions/{ref}"]["get"]["responses"]["200"]
    assert version["content"]["application/json"]["schema"]["$ref"].endswith("/VersionView")
