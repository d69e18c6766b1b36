"""Dataset JSONL validation: each rejected shape names the 1-based line and the problem."""
import pytest

from hub.dataset_validation import DatasetError, validate_jsonl


def _write(tmp_path, text: str | bytes):
    p = tmp_path / "data.jsonl"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_counts_records_and_allows_extra_keys_and_blank_lines(tmp_path):
    p = _write(tmp_path, '{"prompt": "a", "completion": " b"}\n\n{"prompt": "c", "completion": " d", "id": 3}\n')
    assert validate_jsonl(p) == 2


@pytest.mark.parametrize("line, problem", [
    ('{"prompt": "a", ', "not valid JSON"),
    ('["prompt", "completion"]', "expected a JSON object"),
    ('{"completion": " b"}', "'prompt' must be a string"),
    ('{"prompt": "a", "completion": 3}', "'completion' must be a string"),
])
def test_bad_line_is_named_by_number(tmp_path, line, problem):
    p = _write(tmp_path, '{"prompt": "a", "completion": " b"}\n' + line + "\n")
    with pytest.raises(DatasetError) as err:
        validate_jsonl(p)
    assert str(err.value).startswith("line 2:") and problem in str(err.value)


def test_invalid_utf8_is_a_dataset_error(tmp_path):
    p = _write(tmp_path, b'{"prompt": "\xff", "completion": " b"}\n')
    with pytest.raises(DatasetError, match="line 1: not valid JSON"):
        validate_jsonl(p)


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        validate_jsonl(_write(tmp_path, "\n\n"))


def test_overlong_line_is_refused(tmp_path):
    p = _write(tmp_path, '{"prompt": "' + "x" * 200 + '", "completion": " b"}\n')
    with pytest.raises(DatasetError, match="line 1: longer than 100 bytes"):
        validate_jsonl(p, max_line_bytes=100)
