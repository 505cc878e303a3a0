"""`pybuild smoke`: run the layer's own interpreter from ``/opt``, as Lambda lays it out.

The zip is unpacked and shown at ``/opt``: as root, in a private mount namespace (``unshare -m``)
with a read-only bind mount, exactly like Lambda's read-only layer; otherwise the layer runs from
where it was unpacked ("relocated", reported as such). The interpreter runs natively when the
host has the target's architecture and no sysroot is given, else under ``qemu-<arch>-static``
with a sysroot (built from Debian's arm64 packages by `pybuild.runtimes.debian`, or the user's own
``--sysroot``, e.g. extracted from a Lambda base image). Every run gets only Lambda's
environment (`data/lambda-environment.toml`) plus the layer's `[smoke] env`.

Checks, each reported with its output on failure:

- the interpreter starts;
- every top-level module in site-packages imports (except those the layer lists, with a reason,
  in `[smoke] skip_imports`);
- each `[smoke] commands` snippet runs;
- nothing is compiled from source at run time: an audit hook records every ``compile`` of a
  ``.py`` file (a missing, stale or unusable ``.pyc``: a cold-start cost on a read-only ``/opt``),
  and a relocated layer is also checked for files written into it.

With ``--trace``, the files the checks load are recorded, and the biggest subtrees nothing
loaded are listed: the evidence prune rules are chosen from.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pybuild.elf.policy import lambda_environment
from pybuild.errors import PybuildError
from pybuild.model.target import Arch
from pybuild.support import proc
from pybuild.support.extract import TreeWriter, extract_zip, zip_members
from pybuild.support.fsutil import WorkDir, reclaim_stale, tree_entries
from pybuild.ui import Ui

if TYPE_CHECKING:
    from pybuild.model.layerfile import Layer

LAYER_MOUNT = "/opt"
_MARKER = "@@PYBUILD-SMOKE@@"
_OUTPUT_LINES = 25

# Runs inside the layer's interpreter. argv[1] is a JSON job; the last stdout line is the result.
_HARNESS = r"""
import json, sys, traceback
job = json.loads(sys.argv[1])
compiled, opened = [], set()
def _hook(event, args):
    if event == "compile" and isinstance(args[1], str) and args[1].endswith(".py"):
        compiled.append(args[1])
    elif event == "open" and job["trace"] and isinstance(args[0], str):
        opened.add(args[0])
sys.addaudithook(_hook)
result = {"ok": True}
try:
    if job["imports"] is not None:
        failures = {}
        for name in job["imports"]:
            try:
                __import__(name)
            except BaseException as err:
                failures[name] = type(err).__name__ + ": " + str(err).splitlines()[0][:300] \
                    if str(err) else type(err).__name__
        result["failures"] = failures
        result["ok"] = not failures
    else:
        exec(compile(job["code"], "<smoke>", "exec"), {"__name__": "__main__"})
except BaseException:
    traceback.print_exc()
    result["ok"] = False
result["compiled"] = compiled
if job["trace"]:
    files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    files.add(sys.executable)
    result["loaded"] = sorted(f for f in files | opened if isinstance(f, str))
sys.stdout.flush()
print("\n" + MARKER + json.dumps(result))
""".replace("MARKER", repr(_MARKER))


class SmokeError(PybuildError):
    """The smoke test cannot be run (not: a check failed)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One smoke check: what it checks, whether it passed, and on failure what was seen."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SmokeResult:
    """The checks of one smoke run in order, how the interpreter ran (`how`), and with ``--trace``
    the layer-relative files the checks loaded."""

    checks: tuple[Check, ...]
    how: str  # e.g. "qemu-aarch64-static, layer at /opt (read-only bind mount)"
    loaded: tuple[str, ...] = ()  # with --trace: layer-relative files the checks loaded

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)


@dataclass(frozen=True, slots=True)
class SmokeSpec:
    """What to smoke-test in a layer and how: its interpreter's name and site-packages, the
    `[smoke]` settings, and where to run it.

    `timeout` is in seconds, per run of the interpreter. A `sysroot` makes the interpreter run
    under qemu even on a host of the target's architecture. `at_opt` None decides by the host: at
    /opt when root and ``unshare`` work, else relocated.
    """

    arch: Arch
    python: str  # "python3.11"
    site_packages: str = "python/lib/python3.11/site-packages"  # the runtime's (layer-relative)
    commands: tuple[tuple[str, str], ...] = ()  # (label, Python code)
    env: Mapping[str, str] = field(default_factory=dict)
    skip_imports: Mapping[str, str] = field(default_factory=dict)
    timeout: int = 600
    sysroot: Path | None = None
    trace: bool = False
    at_opt: bool | None = None  # None: at /opt when root and unshare work, else relocated


def top_level_modules(root: Path, site_packages: str) -> list[str]:
    """Importable top-level names in the layer's site-packages."""
    site = root / site_packages
    names: set[str] = set()
    if not site.is_dir():
        return []
    for entry in site.iterdir():
        name = entry.name
        if entry.is_dir():
            if name == "__pycache__" or "." in name or not name.isidentifier():
                continue
            if any(p.suffix in (".py", ".pyc", ".so") for p in entry.rglob("*")):
                names.add(name)
        elif entry.suffix in (".py", ".pyc", ".so"):
            stem = name.split(".", 1)[0]
            if stem.isidentifier() and stem != "__init__":
                names.add(stem)
    return sorted(names)


class Runner:
    """Runs the layer's interpreter: natively or under qemu; at /opt or relocated."""

    def __init__(self, layer: Path, spec: SmokeSpec) -> None:
        self.layer = layer
        self.spec = spec
        self.prefix: list[str] = []
        host = platform.machine()
        how = []
        # qemu user mode for a foreign architecture, and also natively whenever a sysroot is
        # given: it is how the layer sees exactly that sysroot's libraries, as in Lambda.
        if host != spec.arch.value or spec.sysroot is not None:
            qemu = shutil.which(f"qemu-{spec.arch.value}-static") or shutil.which(
                f"qemu-{spec.arch.value}"
            )
            if qemu is None:
                raise SmokeError(
                    f"running {spec.arch.value} code with a sysroot on this {host} host needs "
                    f"qemu-{spec.arch.value}-static (Debian: qemu-user-static)"
                )
            if spec.sysroot is None:
                raise SmokeError(
                    f"running {spec.arch.value} code under qemu needs a sysroot (--sysroot DIR)"
                )
            self.prefix = [qemu, "-L", str(spec.sysroot)]
            how.append(f"{Path(qemu).name} with sysroot {spec.sysroot}")
        else:
            how.append(f"native {host}")
        self.at_opt = self._can_mount() if spec.at_opt is None else spec.at_opt
        how.append(
            "layer at /opt (read-only bind mount in a private mount namespace)"
            if self.at_opt
            else f"layer relocated to {layer} (not root: no /opt mount)"
        )
        self.how = ", ".join(how)

    @staticmethod
    def _can_mount() -> bool:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            return False
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
        return probe.returncode == 0

    @property
    def interpreter(self) -> str:
        """The interpreter's path as the running layer sees it: under /opt, or under the unpacked
        directory when relocated."""
        base = LAYER_MOUNT if self.at_opt else str(self.layer)
        return f"{base}/python/bin/{self.spec.python}"

    def command(self, args: Sequence[str]) -> list[str]:
        """The command line that runs the interpreter with `args`: behind qemu if needed, and inside
        the /opt mount if there is one."""
        return self.in_layer([*self.prefix, self.interpreter, *args])

    def in_layer(self, command: Sequence[str]) -> list[str]:
        """`command` run where it sees the layer at /opt (or unchanged when relocated)."""
        if not self.at_opt:
            return list(command)
        mount = 'mount --bind "$0" /opt && mount -o remount,ro,bind /opt && exec "$@"'
        return [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            mount,
            str(self.layer),
            *command,
        ]

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run the interpreter with `args` from ``/``, capturing text output, in Lambda's
        environment plus the layer's `[smoke] env` and nothing else. Past the timeout the result
        has exit code -1 and says so on stderr (nothing is raised)."""
        env = {**lambda_environment(), **self.spec.env}
        try:
            return proc.run(self.command(args), env=env, timeout=self.spec.timeout, cwd="/")
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(
                args, -1, "", f"timed out after {self.spec.timeout} s"
            )

    def harness(self, job: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """Run the harness; returns (result or None if it died, combined output tail)."""
        job = {"imports": None, "code": "", "trace": self.spec.trace, **job}
        completed = self.run(["-c", _HARNESS, json.dumps(job)])
        stdout, marker, tail = completed.stdout.rpartition(_MARKER)
        if not marker:  # it died before its report: everything it printed is output
            stdout, tail = tail, ""
        output = "\n".join(
            stdout.strip().splitlines()[-_OUTPUT_LINES // 3 :]
            + completed.stderr.strip().splitlines()[-_OUTPUT_LINES:]
        )
        if not tail.strip():
            return None, output or f"exit code {completed.returncode}, no output"
        return json.loads(tail), output


def _relative(path: str, layer: Path, at_opt: bool) -> str | None:
    base = LAYER_MOUNT if at_opt else str(layer)
    if not path.startswith(base + "/"):
        return None
    relative = path[len(base) + 1 :]
    if "/__pycache__/" in relative and relative.endswith(".pyc"):  # the source it stands for
        directory, _, name = relative.rpartition("/__pycache__/")
        relative = f"{directory}/{name.split('.', 1)[0]}.py"
    return relative


def run_checks(layer: Path, spec: SmokeSpec) -> SmokeResult:
    """Run every check against an unpacked layer directory."""
    runner = Runner(layer, spec)
    before = set(tree_entries(layer))
    checks: list[Check] = []
    loaded: set[str] = set()
    compiled: list[str] = []

    def record(result: dict[str, Any] | None, traced: bool = True) -> None:
        if result is None:
            return
        compiled.extend(result.get("compiled", []))
        for path in result.get("loaded", []) if traced else []:
            relative = _relative(path, layer, runner.at_opt)
            if relative is not None:
                loaded.add(relative)

    started = runner.run(["-c", "import sys; print(sys.version)"])
    detail = (started.stdout + started.stderr).strip()
    checks.append(
        Check(
            "the interpreter starts with Lambda's environment",
            started.returncode == 0,
            detail if started.returncode else "",
        )
    )
    if started.returncode != 0:
        return SmokeResult(tuple(checks), runner.how)

    # The trace is the evidence for prune rules: it records what the commands load, or, for a
    # layer without commands, what importing every top-level module loads.
    trace_imports = not spec.commands
    modules = [
        m for m in top_level_modules(layer, spec.site_packages) if m not in spec.skip_imports
    ]
    result, output = runner.harness({"imports": modules})
    record(result, traced=trace_imports)
    if result is None:  # the interpreter died: find the module that kills it
        failures = {}
        for module in modules:
            single, single_output = runner.harness({"imports": [module]})
            record(single, traced=trace_imports)
            if single is None or not single["ok"]:
                last_line = (single_output.strip().splitlines() or ["no output"])[-1]
                failures[module] = (single or {}).get("failures", {}).get(module) or last_line
        detail = "; ".join(f"{m}: {e}" for m, e in failures.items()) or output
    else:
        detail = "; ".join(f"{m}: {e}" for m, e in result["failures"].items())
    skipped = (
        f" ({len(spec.skip_imports)} skipped by [smoke] skip_imports)" if spec.skip_imports else ""
    )
    checks.append(
        Check(f"all {len(modules)} top-level modules import{skipped}", not detail, detail)
    )

    for label, code in spec.commands:
        result, output = runner.harness({"code": code})
        record(result)
        ok = result is not None and result["ok"]
        checks.append(Check(f"smoke: {label}", ok, "" if ok else output))

    stale = sorted({p for c in compiled if (p := _relative(c, layer, runner.at_opt))})
    written = sorted(set(tree_entries(layer)) - before)
    problems = [f"compiled from source at run time: {', '.join(stale[:10])}"] if stale else []
    if written:
        problems.append(f"written into the layer: {', '.join(written[:10])}")
    checks.append(
        Check("no bytecode compiled or written at run time", not problems, "; ".join(problems))
    )
    return SmokeResult(tuple(checks), runner.how, tuple(sorted(loaded)))


def command_label(code: str) -> str:
    """A short name for a `[smoke] commands` snippet: its first non-empty line, and how many
    lines it has when there are more (two snippets that start alike stay apart)."""
    lines = [line.strip() for line in code.splitlines() if line.strip()]
    first = lines[0] if lines else "(empty)"
    first = first if len(first) <= 60 else first[:57] + "..."
    return first if len(lines) <= 1 else f"{first} ({len(lines)} lines)"


def smoke_zip(zip_path: Path, spec: SmokeSpec, work_parent: Path) -> SmokeResult:
    """Unpack the zip (through the safe writer) into a work directory under `work_parent` and
    run every check on it."""
    reclaim_stale(work_parent, prefix="smoke-")
    with WorkDir(work_parent, "smoke-") as work:
        layer = work / "opt"
        extract_zip(zip_path, TreeWriter(layer, str(zip_path)))
        return run_checks(layer, spec)


def spec_for_layer(
    layer: Layer,
    *,
    cache_dir: Path,
    ui: Ui,
    sysroot: Path | None = None,
    trace: bool = False,
    relocate: bool = False,
) -> SmokeSpec:
    """The smoke test settings of a layer.toml, with the sysroot built where one is needed."""
    arch = layer.target.arch
    if sysroot is None and platform.machine() != arch.value:
        if arch is not Arch.AARCH64:
            raise SmokeError(f"no default sysroot for {arch.value}; pass --sysroot DIR")
        from pybuild.smoke.sysroot import build_sysroot

        sysroot = build_sysroot(cache_dir, ui)
    from pybuild.runtimes import provider

    layout = provider(layer.runtime.provider).layout(layer.target)
    return SmokeSpec(
        arch=arch,
        python=layout.python.executable,
        site_packages=layout.site_packages,
        commands=tuple((command_label(code), code) for code in layer.smoke.commands)
        + tuple((script.name, script.read_text("utf-8")) for script in layer.smoke.scripts),
        env=dict(layer.smoke.env),
        skip_imports=dict(layer.smoke.skip_imports),
        timeout=layer.smoke.timeout,
        sysroot=sysroot,
        trace=trace,
        at_opt=False if relocate else None,
    )


@dataclass(frozen=True, slots=True)
class Trace:
    """What `smoke --trace` writes: the files the checks loaded, and the largest subtrees of the
    zip nothing loaded (the evidence prune rules are chosen from)."""

    loaded: tuple[str, ...]
    never_loaded: tuple[Subtree, ...]


@dataclass(frozen=True, slots=True)
class Subtree:
    """A directory of the layer zip: its path, how many files it holds, their uncompressed bytes."""

    path: str
    files: int
    bytes: int


def never_loaded(layer_zip: Path, loaded: Sequence[str], limit: int = 30) -> list[Subtree]:
    """The largest directories of the layer from which nothing was loaded (maximal ones)."""
    loaded_set = set(loaded)
    sizes: dict[str, list[int]] = {}
    touched: set[str] = set()
    with zipfile.ZipFile(layer_zip) as archive:
        for member in zip_members(archive, str(layer_zip)):
            if member.kind == "dir":
                continue
            info = member.info
            name = member.name
            source = _relative(f"/opt/{name}", Path("/opt"), at_opt=True) or name
            parts = name.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                entry = sizes.setdefault(directory, [0, 0])
                entry[0] += 1
                entry[1] += info.file_size
                if source in loaded_set or name in loaded_set:
                    touched.add(directory)
    untouched = {d for d in sizes if d not in touched}
    maximal = [d for d in untouched if d.rpartition("/")[0] not in untouched]
    ranked = sorted(maximal, key=lambda d: (-sizes[d][1], d))[:limit]
    return [Subtree(d, sizes[d][0], sizes[d][1]) for d in ranked]
