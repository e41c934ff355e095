"""Shared pytest fixtures: where the shared data lives, and a skip when it is absent."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need real recordings skip with a clear message without it."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"real data not found at {data}: clone spikestream beside the project's shared/ folder")
    return data
