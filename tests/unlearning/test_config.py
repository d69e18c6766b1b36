"""UnlearnConfig: torch-free to import (the hub's unlearn params extend it), a JSON round trip, and a bad field
refused by name when the config is made."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from unlearning.config import UnlearnConfig


def test_importing_the_config_loads_no_torch():
    code = ("import sys; from unlearning.config import UnlearnConfig; UnlearnConfig(); "
            "sys.exit(1 if {'torch', 'numpy', 'transformers'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_config_survives_a_json_round_trip():
    config = UnlearnConfig(relabel="wrong_option", options=("A", "B"), target_modules=("q_proj",), steps=7)
    assert UnlearnConfig.model_validate(json.loads(config.model_dump_json())) == config
    with pytest.raises(ValueError, match="stepz"):
        UnlearnConfig.model_validate({"stepz": 3})


@pytest.mark.parametrize("field, value", [("relabel", "shuffle"), ("lambda_orth", -1.0), ("used_fraction", 1.0),
                                          ("steps", 0), ("nu", 0.0), ("target_modules", ()), ("options", ("A",)),
                                          ("min_forget_examples", 3), ("detector_steps", 1.5), ("gate", "sigmoid"),
                                          ("gate_tail_sd", -1.0), ("gate_max_width", 0.0),
                                          ("builtin_reference", "yes")])
def test_a_bad_field_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        UnlearnConfig(**{field: value})


def test_assigning_a_bad_value_is_refused_too():
    config = UnlearnConfig()
    with pytest.raises(ValueError, match="min_forget_examples"):
        config.min_forget_examples = 2


def test_refusals_name_the_kind_with_the_right_article():
    from hub.job_kinds import JobParamsError, validate_job

    with pytest.raises(JobParamsError, match="^an unlearn job takes exactly 1 input"):
        validate_job("unlearn", [], {"forget": "builtin:word_sorting?n=12"}, {"namespace": "t", "name": "x"})
    with pytest.raises(JobParamsError, match="^a train job publishes|^a train job needs output"):
        validate_job("train", [], {"base": "b", "task": "builtin:word_sorting?n=12"}, None)
