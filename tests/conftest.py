"""Shared pytest fixtures: where the shared data lives, and a skip when it is absent."""

from pathlib import Path

import pytest

from golden.data import DATA_ENV, data_root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``../shared/data`` or ``$SPIKESTREAM_DATA``).

    Tests that need real recordings skip with a clear message when it is absent.
    """
    data = data_root()
    if not data.is_dir():
        pytest.skip(
            f"real data not found at {data}: clone spikestream beside the project's shared/ folder "
            f"or set {DATA_ENV}"
        )
    return data
