"""The Node.js client (integrations/node) against the real bridge in the reference layer, built
with Debian's Python (examples/debian12-arm64) and run like the smoke test (qemu on x86_64 hosts,
/opt as root): Node's own test runner drives test/layer.test.mjs.

Node's runner reports a skipped suite as "skipped 0", so its summary cannot say whether the
real-bridge cases ran: the suite writes how many it defined and passed to PYBUILD_TEST_REPORT,
and a missing report fails here. The client's fast cases (a fake bridge, no qemu) run from
scripts/test (`npm run check`)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from pybuild.cli import main
from pybuild.model.layerfile import load_layer
from pybuild.smoke.runner import Runner, SmokeSpec
from pybuild.support.cache import default_cache_dir
from pybuild.support.extract import TreeWriter, extract_zip

EXAMPLE = REPO / "examples" / "debian12-arm64" / "layer.toml"

NODE_CLIENT = REPO / "integrations" / "node"
LAYER_SUITE = "test/layer.test.mjs"


def layer_cases_passed(report: Path) -> int:
    """The number of real-bridge cases that ran and passed; fails unless all of them did."""
    if not report.is_file():
        raise AssertionError(f"the real-bridge cases did not run: {LAYER_SUITE} wrote no report")
    counts = json.loads(report.read_text(encoding="utf-8"))
    if counts["defined"] == 0 or counts["passed"] != counts["defined"]:
        raise AssertionError(f"{counts['passed']} of {counts['defined']} real-bridge cases passed")
    return int(counts["passed"])


def run_layer_suite(node: str, report: Path, command: list[str] | None) -> str:
    env = {**os.environ, "PYBUILD_TEST_REPORT": str(report)}
    env.pop("PYBUILD_TEST_COMMAND", None)
    if command is not None:
        env["PYBUILD_TEST_COMMAND"] = json.dumps(command)
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", LAYER_SUITE],
        cwd=NODE_CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def test_a_skipped_layer_suite_fails_the_check(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    report = tmp_path / "report.json"
    output = run_layer_suite(node, report, command=None)
    assert "PYBUILD_TEST_COMMAND is not set" in output  # Node's runner calls this a pass
    with pytest.raises(AssertionError, match="the real-bridge cases did not run"):
        layer_cases_passed(report)
    report.write_text('{"defined": 16, "passed": 3}\n', encoding="utf-8")
    with pytest.raises(AssertionError, match="3 of 16 real-bridge cases passed"):
        layer_cases_passed(report)


@pytest.mark.slow
@pytest.mark.network
def test_node_client_against_the_layer(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if shutil.which("qemu-aarch64-static") is None and platform.machine() != "aarch64":
        pytest.skip("qemu-aarch64-static is not installed (Debian: qemu-user-static)")
    from pybuild.smoke.sysroot import build_sysroot
    from pybuild.ui import Ui

    assert main(["build", "-q", "--layer", str(EXAMPLE), "--out", str(tmp_path / "dist")]) == 0
    opt = tmp_path / "opt"
    extract_zip(tmp_path / "dist" / "litellm-debian12.zip", TreeWriter(opt, "layer"))
    assert (opt / "python/lib/python3/dist-packages/litellm_bridge.pyc").is_file()

    layer = load_layer(EXAMPLE)
    spec = SmokeSpec(
        arch=layer.target.arch,
        python="python3.11",
        sysroot=build_sysroot(default_cache_dir(), Ui(quiet=True)),
    )
    report = tmp_path / "report.json"
    output = run_layer_suite(node, report, Runner(opt, spec).command([]))
    assert "\u2139 fail 0" in output, output[-3000:]
    assert layer_cases_passed(report) >= 16, output[-3000:]
    for line in output.splitlines():
        if "handler.mjs on this layer" in line:
            print(line.strip())  # the cold start under qemu, shown with pytest -s
