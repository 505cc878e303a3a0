"""The SBOM inside every layer: CycloneDX 1.6 JSON listing the runtime's files, every wheel, the
bytecode compilers the lock pins and the tools that wrote the layer.

Written by hand (a dozen keys) rather than through cyclonedx-python-lib, whose documents carry a
random serial number and the current time; the tests validate ours against the CycloneDX schema
with that library. Deterministic: no time but the build's SOURCE_DATE_EPOCH, no random UUID, and
every input named by its file name and sha256 only: where a file was downloaded from (a mirror,
a ``file://`` copy, ``+`` written as ``%2B``) changes no byte of the layer.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from pybuild.model.layerfile import Provider
from pybuild.model.lockfile import Lock, LockedFile, LockedRuntime
from pybuild.runtimes.compiler import Compiler
from pybuild.stages.archive import utc_date
from pybuild.support.jsonout import dumps_stable
from pybuild.support.tools import Tools

SBOM_PATH = "python/pybuild.cdx.json"
NOT_PINNED = "compiler not pinned"


def _file_purl(runtime: LockedRuntime, file: LockedFile) -> str:
    if file.debian is not None:
        d = file.debian
        version = urllib.parse.quote(d.version, safe="")
        return f"pkg:deb/debian/{d.package}@{version}?arch={d.architecture}"
    name = "python-build-standalone" if runtime.provider is Provider.PBS else "cpython"
    return (
        f"pkg:generic/{name}@{urllib.parse.quote(runtime.python_version)}"
        f"?file_name={urllib.parse.quote(file.filename, safe='')}"
    )


def _runtime_components(runtime: LockedRuntime, ref: str, role: str) -> list[dict[str, Any]]:
    return [
        {
            "bom-ref": f"{ref}:{file.filename}",
            "type": "application" if role == "runtime" else "library",
            "name": file.debian.package if file.debian is not None else file.filename,
            "version": file.debian.version if file.debian is not None else runtime.python_version,
            "description": f"{role}: {runtime.description}",
            "hashes": [{"alg": "SHA-256", "content": file.sha256}],
            "purl": _file_purl(runtime, file),
        }
        for file in runtime.files
    ]


def sbom(
    lock: Lock,
    *,
    compiler: Compiler,
    tools: Tools,
    options: Mapping[str, Any],
    epoch: int,
) -> dict[str, Any]:
    """The layer's CycloneDX 1.6 document as JSON data: the runtime's files and every wheel as
    components; the tools and, if a pinned compiler ran, every compiler the lock pins as
    metadata; `options` as ``pybuild:`` properties. `epoch` (seconds) is its timestamp."""
    components = _runtime_components(lock.runtime, "runtime", "runtime")
    for wheel in sorted(lock.wheels, key=lambda w: w.name):
        components.append(
            {
                "bom-ref": f"wheel:{wheel.name}",
                "type": "library",
                "name": wheel.name,
                "version": wheel.version,
                "hashes": [{"alg": "SHA-256", "content": wheel.sha256}],
                "purl": f"pkg:pypi/{wheel.name}@{wheel.version}"
                f"?file_name={urllib.parse.quote(wheel.filename)}",
            }
        )
    # Every compiler the lock pins, whichever one ran here: the same CPython compiles the same
    # bytes on every host, and the zip must not say which host built it.
    built_with = []
    if compiler.pinned is not None:
        for arch, pinned in lock.compilers:
            role = f"bytecode compiler for {arch.value} build hosts"
            built_with += _runtime_components(pinned, f"compiler-{arch.value}", role)
    tool_components = [
        {"type": "application", "name": name, "version": version}
        for name, version in sorted(tools.as_dict().items())
    ]
    properties = {**options, "bytecode_compiler": compiler.version}
    if compiler.pinned is None:
        properties["bytecode_compiler_pinned"] = NOT_PINNED
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": utc_date(epoch),
            "tools": {"components": tool_components + built_with},
            "component": {
                "bom-ref": "layer",
                "type": "application",
                "name": lock.name,
                "description": f"AWS Lambda layer for {lock.target.arch.value}, "
                f"glibc {lock.target.glibc}",
            },
            "properties": [
                {"name": f"pybuild:{key}", "value": str(value)}
                for key, value in sorted(properties.items())
            ],
        },
        "components": components,
        "dependencies": [{"ref": "layer", "dependsOn": [c["bom-ref"] for c in components]}],
    }


def sbom_json(
    lock: Lock, *, compiler: Compiler, tools: Tools, options: Mapping[str, Any], epoch: int
) -> str:
    """The SBOM's text as written to `SBOM_PATH`: sorted keys, 2-space indent, trailing newline."""
    return dumps_stable(sbom(lock, compiler=compiler, tools=tools, options=options, epoch=epoch))
