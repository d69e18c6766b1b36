"""UnlearnConfig: torch-free to import (the hub checks its params model against it), JSON round trip, and check()
naming the bad field."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from unlearning.config import UnlearnConfig


def test_importing_the_config_loads_no_torch():
    code = ("import sys; from unlearning.config import UnlearnConfig; UnlearnConfig().check(); "
            "sys.exit(1 if {'torch', 'numpy', 'transformers'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_config_survives_a_json_round_trip():
    config = UnlearnConfig(relabel="wrong_option", options=("A", "B"), target_modules=("q_proj",), steps=7)
    assert UnlearnConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown"):
        UnlearnConfig.from_dict({"stepz": 3})


@pytest.mark.parametrize("field, value", [("relabel", "shuffle"), ("lambda_orth", -1.0), ("used_fraction", 1.0),
                                          ("steps", 0), ("nu", 0.0), ("target_modules", ()), ("options", ("A",)),
                                          ("min_forget_examples", 2), ("detector_steps", 1.5), ("gate", "sigmoid"),
                                          ("gate_tail_sd", -1.0), ("gate_max_width", 0.0),
                                          ("builtin_reference", "yes")])
def test_check_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(UnlearnConfig(), **{field: value}).check()


def test_defaults_pass_the_check():
    UnlearnConfig().check()


def test_refusals_name_the_kind_with_the_right_article():
    from hub.job_kinds import JobParamsError, validate_job

    with pytest.raises(JobParamsError, match="^an unlearn job takes exactly 1 input"):
        validate_job("unlearn", [], {"forget": "builtin:word_sorting?n=12"}, {"namespace": "t", "name": "x"})
    with pytest.raises(JobParamsError, match="^a train job publishes|^a train job needs output"):
        validate_job("train", [], {"base": "b", "task": "builtin:word_sorting?n=12"}, None)
