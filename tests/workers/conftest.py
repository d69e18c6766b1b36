"""Worker tests share the API tests' tiny base and hub helpers."""
from tests.api.conftest import tiny_base  # noqa: F401 - fixture re-exported for this folder
