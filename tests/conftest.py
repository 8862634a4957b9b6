"""Shared test setup: notebooks and tests run in the smoke size unless told otherwise."""
import os

import pytest

os.environ.setdefault("KDLIB_SMOKE", "1")


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """An empty kdlib data folder, so tests never touch the user's cache or zoo."""
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    return tmp_path / "data"
