"""Fixtures for the connector tests: real git repositories, databases and servers."""

from __future__ import annotations

import pytest

from anyfind import Index


@pytest.fixture
def index(tmp_path):
    with Index.open(tmp_path / "idx") as idx:
        yield idx
