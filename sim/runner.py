"""Run a cocotb test module on Verilog generated from any Amaranth ``wiring.Component``.

The pytest side calls :func:`run_cocotb` with the component, a cocotb test module and a JSON-able
configuration; the cocotb side (inside Icarus) reads that configuration back with
:func:`load_config`. Each call gets its own build directory ``build/sim/<build_name>/`` holding
the generated ``<toplevel>.v``, ``config.json``, the Icarus build and the results, so parallel
pytest workers (``-n 2``) never share files as long as ``build_name`` is unique per test.

Generated Verilog names a stream port ``p`` as ``p__payload`` / ``p__valid`` / ``p__ready``; the
clock and synchronous reset of the ``sync`` domain are ``clk`` and ``rst``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from xml.etree import ElementTree

from amaranth.back import verilog

__all__ = ["REPO", "SIM_BUILD", "CONFIG_ENV", "CocotbFailure", "write_verilog", "run_cocotb", "load_config"]

REPO = Path(__file__).resolve().parent.parent
SIM_BUILD = REPO / "build" / "sim"
CONFIG_ENV = "SPIKESTREAM_SIM_CONFIG"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def write_verilog(component, path: Path, *, name: str = "top") -> Path:
    """Convert ``component`` to Verilog module ``name`` at ``path``; rewrite only if it changed.

    Leaving an unchanged file alone keeps its timestamp, so the Icarus build is reused.
    """
    text = verilog.convert(component, name=name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def run_cocotb(
    component,
    *,
    test_module: str,
    build_name: str,
    config: dict | None = None,
    toplevel: str = "top",
    testcase: str | None = None,
    test_filter: str | None = None,
    seed: int = 0,
    waves: bool = False,
) -> Path:
    """Generate Verilog for ``component``, build it with Icarus and run ``test_module`` on it.

    Parameters
    ----------
    component : wiring.Component
        The design; its ports become the toplevel's ports.
    test_module : str
        Dotted module holding the ``@cocotb.test`` functions (``"sim.tb_refractory_lif"``).
    build_name : str
        Build directory below ``build/sim/``; must be unique per concurrently running test.
    config : dict, optional
        JSON-able configuration for the testbench, read there with :func:`load_config`.
    toplevel : str
        Verilog module name.
    testcase : str, optional
        Run only the cocotb test of this name (without parameters; a parametrized test's
        variants have names ``test/param=value``, select them with ``test_filter``).
    test_filter : str, optional
        Regular expression searched in the cocotb tests' full names (``module.test/param=x``);
        only matching tests run (default: every test in the module, in definition order, in
        one simulator process: state left by one test is seen by the next).
    seed : int
        cocotb's random seed (the testbenches seed their own generators from ``config``).
    waves : bool
        Record ``<toplevel>.fst`` in the build directory (also when ``WAVES=1`` is set).

    Returns
    -------
    Path
        The results XML (``build/sim/<build_name>/results.xml``).

    Raises
    ------
    CocotbFailure
        A cocotb test failed or the simulator stopped; the message lists each failing test
        with its message (for the checkers: stream, beat, step, neuron, field, values).
    """
    from cocotb_tools.runner import get_runner

    if testcase is not None and test_filter is not None:
        raise ValueError("give either testcase or test_filter, not both")
    if not _SAFE_NAME.match(build_name) or ".." in build_name:
        raise ValueError(f"build_name {build_name!r} must be a relative path of letters, digits, '_', '-', '.', '/'")
    build_dir = SIM_BUILD / build_name
    source = write_verilog(component, build_dir / f"{toplevel}.v", name=toplevel)
    config_path = build_dir / "config.json"
    config_path.write_text(json.dumps(config or {}, indent=1))

    results = build_dir / "results.xml"
    runner = get_runner("icarus")
    waves = waves or os.environ.get("WAVES", "") not in ("", "0")
    # A waveform needs cocotb's dump module compiled in: rebuild rather than reuse sim.vvp.
    runner.build(
        sources=[source], hdl_toplevel=toplevel, build_dir=build_dir, timescale=("1ns", "1ps"), waves=waves, always=waves
    )
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            testcase=testcase,
            test_filter=test_filter,
            seed=seed,
            extra_env={
                CONFIG_ENV: str(config_path),
                # cocotb's default rewrites the asserts of every imported module ("*.py"),
                # torch included, compiling each from source: ~10 s per run. Only the test
                # module's asserts need rewriting.
                "COCOTB_REWRITE_ASSERTION_FILES": test_module.rsplit(".", 1)[-1] + ".py",
            },
            waves=waves,
            timescale=("1ns", "1ps"),
            results_xml=str(results),
        )
    except SystemExit as exit:
        raise CocotbFailure(f"cocotb run in {build_dir} failed:\n{_failures(results)}") from exit
    # cocotb_tools only exits on a failure when it runs under pytest: outside pytest (a bench,
    # a script) the results file is the only witness.
    if not results.exists() or _failed_cases(results):
        raise CocotbFailure(f"cocotb run in {build_dir} failed:\n{_failures(results)}")
    if not _ran_any(results):
        raise CocotbFailure(f"cocotb run in {build_dir} ran no test (testcase {testcase!r} / test_filter {test_filter!r} matched nothing?)")
    return results


class CocotbFailure(AssertionError):
    """A cocotb test failed; the message carries each failing test's name and message."""


def _failures(results: Path) -> str:
    """Failure messages of a cocotb xUnit results file (or why there are none)."""
    if not results.exists():
        return f"(no results file {results}: the simulator did not finish; see the output above)"
    lines = []
    for case in ElementTree.parse(results).getroot().iter("testcase"):
        for failure in [*case.iter("failure"), *case.iter("error")]:
            text = (failure.get("message") or "") + "\n" + (failure.text or "")
            lines.append(f"[{case.get('name')}] {text.strip()}")
    return "\n".join(lines) or "(results file lists no failing test; see the output above)"


def _failed_cases(results: Path) -> list[str]:
    """Names of the test cases with a failure or error element in the results file."""
    return [
        case.get("name")
        for case in ElementTree.parse(results).getroot().iter("testcase")
        if list(case.iter("failure")) or list(case.iter("error"))
    ]


def _ran_any(results: Path) -> bool:
    """True when the results file lists at least one test that was not skipped."""
    cases = list(ElementTree.parse(results).getroot().iter("testcase"))
    return any(not list(case.iter("skipped")) for case in cases)


def load_config() -> dict:
    """Inside a cocotb test: the ``config`` that :func:`run_cocotb` was given."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_ENV} is not set: run this cocotb module through sim.runner.run_cocotb")
    return json.loads(Path(path).read_text())
