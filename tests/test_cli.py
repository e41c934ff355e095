"""The commands' shared argument checks, their one error exit, and atomic writes."""

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from golden.cli import finite_float, int_range, output_file, positive_int, run_main, upper_choice
from golden.errors import SpikestreamError
from golden.files import OutputPathError, atomic_write, check_output, write_bytes, write_text

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("validator, text, message", [
    (positive_int, "0", "must be at least 1, not 0"),
    (positive_int, "1.5", "expected an integer, not '1.5'"),
    (positive_int, "9" * 60, "not an integer of at most 40 digits"),
    (int_range(1, 63, "a class count"), "64", "must be a class count in 1..63, not 64"),
    (finite_float, "inf", "expected a finite number"),
    (finite_float, "nan", "expected a finite number"),
    (upper_choice(("12F", "85F"), "variant"), "99F", "unknown variant '99F'; choose from 12F, 85F"),
])
def test_validators_say_what_to_fix(validator, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace(".", r"\.").replace("(", r"\(")):
        validator(text)


def test_validators_accept_good_values(tmp_path):
    assert positive_int(" 7 ") == 7 and finite_float("2.5") == 2.5
    assert upper_choice(("12F", "85F"))("85f") == "85F"
    assert output_file(str(tmp_path / "new.bin")) == tmp_path / "new.bin"


@pytest.mark.parametrize("error, status, text", [
    (SpikestreamError("f.csv: line 2 has 3 fields"), 2, "error: f.csv: line 2 has 3 fields\n"),
    (FileNotFoundError(2, "No such file or directory", "x.bin"), 2, "error: x.bin: No such file or directory\n"),
    (KeyboardInterrupt(), 130, "interrupted\n"),
    (RuntimeError("boom"), 70, "(a bug, please report it): RuntimeError: boom"),
])
def test_run_main_turns_escapes_into_one_line(capsys, monkeypatch, error, status, text):
    monkeypatch.delenv("SPIKESTREAM_TRACEBACK", raising=False)

    def main(argv):
        raise error

    assert run_main(main) == status
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1 and "Traceback" not in err
    assert run_main(lambda argv: [1, 2]) == 0  # a main that returns rows


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    write_text(target, "new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    """The temporary file is owner-only; the file it becomes is readable as ``open`` makes it."""
    mask = os.umask(0o022)
    try:
        write_bytes(tmp_path / "model.safetensors", b"x")
        (tmp_path / "plain").write_bytes(b"x")
    finally:
        os.umask(mask)
    mode = stat.S_IMODE((tmp_path / "model.safetensors").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o644


def test_check_output_refuses_inputs_directories_and_existing_files(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("1,2,1,5\n")
    with pytest.raises(OutputPathError, match="is also an input file"):
        check_output(tmp_path / "." / "in.csv", inputs=[source])
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output(tmp_path)
    with pytest.raises(OutputPathError, match="exists; pass --force"):
        check_output(source, force=False)
    assert check_output(tmp_path / "new.bin", inputs=[source], force=False) == tmp_path / "new.bin"


def test_a_command_prints_no_traceback(tmp_path):
    """End to end through ``python -m``: a missing serial port is one line and exit status 2."""
    events = tmp_path / "a.csv"
    events.write_text("x,y,p,t\n1,2,1,5\n")
    result = subprocess.run([sys.executable, "-m", "hw.host", "--port", str(tmp_path / "ttyNONE"),
                             "--events", str(events)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and "no such serial port" in result.stderr
