"""lora.wrapping keeps the adapter's own base name without PEFT's "was renamed" warning (it filled every job log)."""
from __future__ import annotations

import warnings

from peft import LoraConfig

from lora.bases import tiny_model
from lora.wrapping import wrapped


def test_wrapping_keeps_our_base_name_and_warns_nothing_about_renaming():
    model, _ = tiny_model("llama", seed=0)
    model.name_or_path = "/some/local/folder"  # what PEFT would put in place of our name
    config = LoraConfig(r=2, target_modules=["q_proj"], base_model_name_or_path="team-base")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with wrapped(model, config) as peft_model:
            assert peft_model.peft_config["default"].base_model_name_or_path == "team-base"
    assert not [w for w in caught if "was renamed" in str(w.message)]
    assert config.base_model_name_or_path == "team-base"
