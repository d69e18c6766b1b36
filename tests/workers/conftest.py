"""Worker tests share the API tests' tiny base and hub helpers."""
from tests.api.conftest import private_pg_db, tiny_base  # noqa: F401 - fixtures re-exported for this folder
