"""The Node.js helper (integrations/node) against the real bridge in the reference layer, built
with Debian's Python (examples/debian12-arm64) and run like the smoke test (qemu on x86_64 hosts,
/opt as root): Node's own test runner drives it."""

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

pytestmark = [pytest.mark.slow, pytest.mark.network]


def test_node_helper_against_the_layer(tmp_path: Path) -> None:
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
    command = Runner(opt, spec).command([])
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", "test/"],
        cwd=REPO / "integrations" / "node",
        env={**os.environ, "PYBUILD_TEST_COMMAND": json.dumps(command)},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    # the spec reporter's summary lines ("\u2139 fail 0"): nothing failed, nothing skipped
    assert "\u2139 fail 0" in output, output[-3000:]
    assert "\u2139 skipped 0" in output, output[-3000:]
