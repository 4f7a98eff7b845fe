"""Fixtures shared by the HQ tests."""

import pytest

from tests.postgres import Postgres, postgres_bin


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """The store to test against: an SQLite file, then a real PostgreSQL server's URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "hq.sqlite")
        return
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: make system-deps")
    server = Postgres().start()
    yield server.url
    server.remove()
