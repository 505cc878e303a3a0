"""`pybuild build --check`: build again under other conditions and compare, byte for byte.

The second build runs ``python -m pybuild build`` (the documented command, with its documented
``--creation-order reversed``) in another process, with what a different machine would differ in:

- a fresh cache, seeded only from the first build's fetched files (``--offline --from``): the
  compiler is unpacked again and nothing is taken from the compression cache;
- another build and output directory, umask 027 and time zone (Pacific/Chatham, +12:45/+13:45);
- another locale, one that exists: ``tr_TR.UTF-8`` (dotless i) generated with ``localedef``
  into the check's own directory when the host does not have it;
- the tree's files created in reverse order;
- ``SOURCE_DATE_EPOCH`` set to pybuild's default when it was unset (and unset when it was the
  default).

It prints the variations it applied, and fails naming the first entries that differ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pybuild.errors import CheckError
from pybuild.model.layerfile import Layer
from pybuild.pipeline import BuildRequest, BuildResult, Sources
from pybuild.stages.archive import DEFAULT_EPOCH
from pybuild.support import proc
from pybuild.support.fsutil import WorkDir, resolve_path
from pybuild.tools.diff import diff_zips
from pybuild.ui import Ui

TIME_ZONE = "Pacific/Chatham"
LOCALE = "tr_TR.UTF-8"
UMASK = 0o027


def _locale(work: Path) -> tuple[dict[str, str], str]:
    """Environment for a locale other than the current one that really exists, and its name."""
    try:
        available = subprocess.run(
            ["locale", "-a"], capture_output=True, text=True, check=False
        ).stdout.split()
    except OSError:
        available = []
    wanted = LOCALE.lower().replace("-", "")
    if any(name.lower().replace("-", "") == wanted for name in available):
        return {"LANG": LOCALE, "LC_ALL": LOCALE}, LOCALE
    localedef = shutil.which("localedef")
    if localedef is not None:
        target = work / "locales"
        target.mkdir()
        made = subprocess.run(
            [localedef, "-i", "tr_TR", "-f", "UTF-8", str(target / LOCALE)],
            capture_output=True,
            check=False,
        )
        if made.returncode in (0, 1) and (target / LOCALE).is_dir():  # 1: warnings only
            return {
                "LANG": LOCALE,
                "LC_ALL": LOCALE,
                "LOCPATH": str(target),
            }, f"{LOCALE} (generated)"
    others = [n for n in available if n not in ("C", "POSIX") and n != os.environ.get("LC_ALL")]
    if others:
        return {"LANG": others[0], "LC_ALL": others[0]}, others[0]
    return {}, "not varied (no other locale exists and localedef is missing)"


def check_reproducible(
    layer: Layer, request: BuildRequest, first: BuildResult, sources: Sources, ui: Ui
) -> list[str]:
    """Build again under perturbed conditions in a separate process; compare the zips. Returns
    the variations applied."""
    with WorkDir(request.cache.root / "tmp", "check-") as work:
        env_locale, locale_note = _locale(work)
        out = work / "second build" / "out"
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("SOURCE_DATE_EPOCH", "LANG", "LANGUAGE") and not key.startswith("LC_")
        }
        env.update(env_locale)
        env["TZ"] = TIME_ZONE
        env["PYBUILD_CACHE_DIR"] = str(work / "cache")
        if request.epoch == DEFAULT_EPOCH and "SOURCE_DATE_EPOCH" not in os.environ:
            env["SOURCE_DATE_EPOCH"] = str(DEFAULT_EPOCH)  # the default, set: must change nothing
            epoch_note = "SOURCE_DATE_EPOCH set to the default"
        elif request.epoch == DEFAULT_EPOCH:
            epoch_note = "SOURCE_DATE_EPOCH unset (it was the default)"
        else:
            env["SOURCE_DATE_EPOCH"] = os.environ["SOURCE_DATE_EPOCH"]
            epoch_note = "SOURCE_DATE_EPOCH kept"
        command = [
            sys.executable,
            "-m",
            "pybuild",
            "build",
            "--quiet",
            "--offline",
            "--from",
            str(request.cache.root / "sha256"),
            "--creation-order",
            "reversed",
            "--layer",
            str(resolve_path(layer.path)),
            "--out",
            str(out),
        ]
        if sources.python:
            command += ["--python", sources.python]
        if sources.pinned_compiler:
            command += ["--pinned-compiler", sources.pinned_compiler]
        elif request.compiler.how != "native" and request.compiler.pinned is not None:
            command += ["--emulate-compiler", "--sysroot", request.compiler.command[2]]
        if request.strict:
            command.append("--strict")
        variations = [
            "a separate process with a fresh cache (compiler unpacked again, empty compression "
            "cache)",
            "another build and output directory",
            f"umask {UMASK:03o}",
            f"TZ={TIME_ZONE}",
            f"locale {locale_note}",
            "files created in reverse order",
            epoch_note,
        ]
        ui.info("--check: building again: " + "; ".join(variations))
        out.parent.mkdir(parents=True)
        completed = proc.run(command, cwd=out.parent, env=env, umask=UMASK)
        if completed.returncode != 0:
            last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            raise CheckError(f"--check: the second build failed: {last}")
        second = out / first.archive.path.name
        difference = diff_zips(first.archive.path, second)
        if not difference.identical:
            raise CheckError(
                f"--check: the two builds differ ({first.archive.sha256[:16]} vs "
                f"{difference.sha256_b[:16]})",
                difference.lines(limit=20),
            )
    ui.info(f"--check: both builds are {first.archive.sha256}")
    return variations
