"""Shared pytest fixtures: where the shared data lives (and a skip when it is absent), a
command's refusal of bad arguments, and components that are never elaborated."""

import gc
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest
from amaranth.hdl import UnusedElaboratable

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


@pytest.fixture
def usage_error(capsys):
    """``usage_error(main, argv)``: run a command's ``main`` on arguments it must refuse.

    Asserts exit status 2 (``SystemExit``), no traceback, and a last line of stderr that is one
    ``error:`` line; returns that line, for the caller to look for its message in.
    """
    def refuse(main, argv) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, (argv, exit_info.value.code, err)
        assert "Traceback" not in err, (argv, err)
        line = err.rstrip("\n").split("\n")[-1]
        assert "error: " in line, (argv, err)
        return line

    return refuse


@contextmanager
def _never_elaborated():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


@pytest.fixture
def never_elaborated():
    """``with never_elaborated():`` around components built only to be refused or inspected:
    Amaranth's ``UnusedElaboratable`` warning is silenced for those collected by the block's end."""
    return _never_elaborated
