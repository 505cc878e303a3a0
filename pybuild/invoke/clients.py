"""The Node.js runtime client that speaks the Runtime API inside the environment.

- ``ric``: AWS's own, `aws-lambda-ric` from npm, what Lambda's Node.js images run. 3.3.0 is the
  newest that supports Node 20 (4.x needs Node 22). Its package builds a native client (curl and
  aws-lambda-cpp, with cmake, autoconf, automake, libtool and g++, then node-gyp against Node's
  headers) and loads it unconditionally: measured on 3.3.0, setting
  ``AWS_LAMBDA_NODEJS_USE_ALTERNATIVE_CLIENT_1=true`` only moves ``/next`` to Node's http module,
  responses still go through the native client, so there is no pure-JS mode to fall back on.
- ``loop``: pybuild's own loop (`runtime_loop.mjs`), the same API and error shape in one file,
  for where the native build is impossible.

``auto`` takes aws-lambda-ric from ``--ric DIR`` or pybuild's cache, installs it there with npm
when it is missing (once), and falls back to the loop, saying why, when that fails.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import PybuildError
from pybuild.support.fsutil import resolve_path
from pybuild.ui import Ui

RIC_PACKAGE = "aws-lambda-ric"
RIC_VERSION = "3.3.0"


@dataclass(frozen=True, slots=True)
class RuntimeClient:
    """A runtime client: its name in the output ("aws-lambda-ric 3.3.0") and its argv after node."""

    name: str  # for the output: "aws-lambda-ric 3.3.0" or "pybuild runtime loop"
    argv: tuple[str, ...]  # after `node`; the handler comes from _HANDLER


def node_executable() -> str:
    """The path of ``node`` on PATH; raises PybuildError if there is none."""
    node = shutil.which("node")
    if node is None:
        raise PybuildError("pybuild invoke needs Node.js (`node` on PATH)")
    return node


def loop_client() -> RuntimeClient:
    """pybuild's own runtime loop (`runtime_loop.mjs`, shipped in the package)."""
    script = importlib.resources.files("pybuild.invoke").joinpath("runtime_loop.mjs")
    return RuntimeClient("pybuild runtime loop", (str(script),))


def ric_client(package: Path, handler: str) -> RuntimeClient:
    """aws-lambda-ric from its package directory (…/node_modules/aws-lambda-ric)."""
    manifest = package / "package.json"
    if not manifest.is_file():
        raise PybuildError(f"{package}: not an aws-lambda-ric package (no package.json)")
    version = json.loads(manifest.read_text(encoding="utf-8")).get("version", "?")
    native = list(package.glob("**/rapid-client.node"))
    if not native:
        raise PybuildError(f"{package}: aws-lambda-ric {version} has no native client built")
    # its bin script takes the handler as an argument and the working directory as the task root
    return RuntimeClient(f"{RIC_PACKAGE} {version}", (str(package / "bin" / "index.mjs"), handler))


def ric_cache_dir(cache_root: Path) -> Path:
    """Where aws-lambda-ric `RIC_VERSION` is installed with npm (its ``--prefix``) under the cache
    root; the package itself is in its node_modules."""
    return cache_root / "npm" / f"{RIC_PACKAGE}-{RIC_VERSION}"


def install_ric(prefix: Path, ui: Ui) -> Path:
    """`npm install aws-lambda-ric@RIC_VERSION` into `prefix`; its package directory."""
    npm = shutil.which("npm")
    if npm is None:
        raise PybuildError("npm is not on PATH")
    prefix.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # node-gyp needs Node's headers: use the installed ones rather than downloading them
    node_prefix = resolve_path(Path(node_executable())).parent.parent
    if (node_prefix / "include" / "node" / "common.gypi").is_file():
        env["npm_config_nodedir"] = str(node_prefix)
    ui.info(
        f"installing {RIC_PACKAGE} {RIC_VERSION} from npm into {prefix} (builds its native "
        "client: cmake, autoconf, automake, libtool, g++; about a minute)"
    )
    completed = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-audit",
            "--no-fund",
            "--no-save",
            f"{RIC_PACKAGE}@{RIC_VERSION}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    package = prefix / "node_modules" / RIC_PACKAGE
    if completed.returncode != 0 or not list(package.glob("**/rapid-client.node")):
        tail = (completed.stdout + completed.stderr).strip().splitlines()[-3:]
        raise PybuildError(f"npm install {RIC_PACKAGE}@{RIC_VERSION} failed: {' / '.join(tail)}")
    return package


def choose_client(
    choice: str, handler: str, ric_dir: Path | None, cache_root: Path, ui: Ui
) -> RuntimeClient:
    """The runtime client for `choice` ("auto", "ric" or "loop")."""
    if choice == "loop":
        return loop_client()
    if ric_dir is not None:
        return ric_client(ric_dir, handler)
    cached = ric_cache_dir(cache_root) / "node_modules" / RIC_PACKAGE
    try:
        if not list(cached.glob("**/rapid-client.node")):
            install_ric(ric_cache_dir(cache_root), ui)
        return ric_client(cached, handler)
    except PybuildError as err:
        if choice == "ric":
            raise
        ui.warn(f"{err}; using pybuild's runtime loop instead")
        return loop_client()
