"""Submit-time checks a kind needs beyond shapes and references: each looks at the resolved registry objects
(torch-free, with the database) and returns the params to store, completed where the hub found something for the
caller (e.g. the transfer kit found through lineage), or raises Invalid, so a job that cannot run is a 422 with
nothing queued. Each is named on its kind's spec line in hub.job_kinds."""
from __future__ import annotations

# each check imports hub.registry when it runs (in the API, with the database): the CLI reads the kinds' declaration
# through hub.job_kinds without loading SQLAlchemy


def _base_name(version) -> str | None:
    return version.artifact.base.name if version.artifact.base else None


def _file_names(version) -> set[str]:
    return {f["name"] for f in version.files}


def train(resolved) -> dict:
    """Continued training runs on the base the input adapter was trained on."""
    from hub import registry
    from hub.registry import Invalid

    for source in resolved.inputs:
        if _base_name(source) != resolved.params["base"]:
            raise Invalid(f"inputs[0] {registry.version_ref(source)} is on base {_base_name(source)!r}, not "
                          f"params.base {resolved.params['base']!r}: continue training on the adapter's own base")
    return resolved.params


def transfer_kit(resolved) -> dict:
    """The real data must hold more examples than the kit keeps as seeds."""
    from hub import registry
    from hub.registry import Invalid

    params = resolved.params
    for dataset in resolved.refs.get("dataset", []):
        records = (dataset.metrics or {}).get("records")
        if isinstance(records, int) and records <= params["seeds"]:
            raise Invalid(f"params.dataset {registry.version_ref(dataset)} has {records} examples; a kit keeps "
                          f"{params['seeds']} as seeds and needs more than that to train its discriminator")
    return params


def transfer(resolved) -> dict:
    """Find the kit (named, or the newest readable `discriminates_for` the source) and check it fits the source."""
    from hub import registry
    from hub.registry import Invalid

    params = dict(resolved.params)
    (source,) = resolved.inputs
    source_ref = registry.version_ref(source)
    if resolved.refs.get("kit"):
        (kit,) = resolved.refs["kit"]
    else:
        found = [ref for ref in registry.children_of(resolved.session, source.id, "discriminates_for")
                 if resolved.readable(ref.split("/", 1)[0])]
        if not found:
            raise Invalid(f"{source_ref} has no transfer kit: make one with a transfer_kit job (or train with "
                          "transfer_kit: true) while its data exists, or name one in params.kit")
        ns, name, ref = registry.parse_ref(found[0])
        kit = registry.resolve_version(resolved.session, "adapter", ns, name, ref)
    kit_ref = registry.version_ref(kit)
    if "kit/kit.json" not in _file_names(kit):
        raise Invalid(f"params.kit {kit_ref} is not a transfer kit (no kit/kit.json)")
    if _base_name(kit) != _base_name(source):
        raise Invalid(f"params.kit {kit_ref}: its discriminator is on base {_base_name(kit)!r}, but the source "
                      f"{source_ref} is on {_base_name(source)!r}; the discriminator must run on the source base")
    params["kit"] = kit_ref
    return params


def _builtin_size(spec: str) -> int:
    """Examples in a built-in task's train split: its n (default 256; lora.tasks.make_task draws the test split
    on top of that)."""
    from urllib.parse import parse_qsl

    return int(dict(parse_qsl(spec.partition("?")[2])).get("n", 256))


def unlearn(resolved) -> dict:
    """The forget set must be big enough for the detector's 80/20 split (a dataset's size is in its metrics)."""
    from hub.registry import Invalid

    params = resolved.params
    forget = params["forget"]
    size = _builtin_size(forget) if forget.startswith("builtin:") else \
        (resolved.refs["forget"][0].metrics or {}).get("records")
    if isinstance(size, int) and size < params["min_forget_examples"]:
        raise Invalid(f"params.forget has {size} examples; the detector's 80/20 split needs at least "
                      f"{params['min_forget_examples']} (min_forget_examples)")
    return params


def train_generator(resolved) -> dict:
    """One family: the inputs agree on base, rank, alpha and targets (generation.family), and each carries its
    training trajectory (checkpoints/step-N/ files, from train with checkpoint_every)."""
    from hub import registry
    from hub.registry import Invalid

    from generation.family import family_mismatches

    refs = {registry.version_ref(v): v for v in resolved.inputs}
    configs = {}
    for ref, version in refs.items():
        configs[ref] = {**(version.peft_config or {}), "base_model_name_or_path": _base_name(version)}
    problems = family_mismatches(configs)
    no_trajectory = [ref for ref, v in refs.items()
                     if not any(n.startswith("checkpoints/") for n in _file_names(v))]
    if no_trajectory:
        problems.append(f"no training trajectory (train with checkpoint_every): {', '.join(no_trajectory)}")
    if problems:
        raise Invalid("these inputs cannot form one generator family: " + "; ".join(problems))
    if resolved.params["condition"] == "hidden_state":  # conditions come from each input's own training data
        for ref, version in refs.items():
            source = (version.metrics or {}).get("train/source")
            if not isinstance(source, str):
                raise Invalid(f"{ref} has no training data on record (train/source): use condition 'text' with "
                              "descriptions")
            if not source.startswith("builtin:") and not resolved.readable(source.split("/", 1)[0]):
                raise registry.Forbidden(f"{ref} was trained on data you may not read; its hidden-state condition "
                                         "would use it")
    return resolved.params


def generate(resolved) -> dict:
    """The condition must be the kind the generator was trained on (recorded in its metrics)."""
    from hub import registry
    from hub.registry import Invalid

    (generator,) = resolved.inputs
    kind = (generator.metrics or {}).get("condition")
    params = resolved.params
    if kind == "text" and not params.get("description"):
        raise Invalid(f"{registry.version_ref(generator)} is conditioned on text: give params.description")
    if kind == "hidden_state" and not params.get("examples"):
        raise Invalid(f"{registry.version_ref(generator)} is conditioned on hidden states: give params.examples "
                      "(a few examples of the task)")
    return params
