"""hub.peft_validation against a real PEFT adapter saved from a tiny base, then hand-broken variants."""
import io
import json

import pytest

from hub.peft_validation import AdapterValidationError, check_lora_tensors, parse_adapter_config
from hub.safetensors_header import read_header


@pytest.fixture(scope="module")
def real_adapter(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from lora.bases import module_shapes, tiny_model
    base = tiny_model("llama")[0]
    shapes = {k: list(v) for k, v in module_shapes(base).items()}
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])).save_pretrained(out)
    raw = (out / "adapter_model.safetensors").read_bytes()
    tensors, _ = read_header(io.BytesIO(raw), len(raw))
    return (out / "adapter_config.json").read_bytes(), tensors, shapes


def test_real_peft_adapter_validates_against_its_base(real_adapter):
    raw_cfg, tensors, shapes = real_adapter
    mods = check_lora_tensors(parse_adapter_config(raw_cfg), tensors, shapes)
    assert mods and all(m.endswith(("q_proj", "v_proj")) for m in mods)


def test_wrong_rank_is_refused(real_adapter):
    raw_cfg, tensors, shapes = real_adapter
    cfg = {**json.loads(raw_cfg), "r": 8}
    with pytest.raises(AdapterValidationError):
        check_lora_tensors(parse_adapter_config(json.dumps(cfg).encode()), tensors, shapes)


def test_module_unknown_to_the_base_is_refused(real_adapter):
    raw_cfg, tensors, shapes = real_adapter
    smaller = {k: v for k, v in shapes.items() if not k.endswith("q_proj")}
    with pytest.raises(AdapterValidationError):
        check_lora_tensors(parse_adapter_config(raw_cfg), tensors, smaller)


@pytest.mark.parametrize("patch", [{"peft_type": "IA3"}, {"r": 0}])
def test_bad_configs_are_refused(real_adapter, patch):
    cfg = {**json.loads(real_adapter[0]), **patch}
    with pytest.raises(AdapterValidationError):
        parse_adapter_config(json.dumps(cfg).encode())
