"""The SBOM inside every layer: CycloneDX 1.6 JSON listing the runtime and every wheel.

Written by hand (a dozen keys) rather than through cyclonedx-python-lib, whose documents carry a
random serial number and the current time; the tests validate ours against the CycloneDX schema
with that library. Deterministic: no time but the build's SOURCE_DATE_EPOCH, no random UUID.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from pybuild import __version__
from pybuild.model.lockfile import Lock, dumps_stable
from pybuild.stages.archive import utc_date

SBOM_PATH = "python/pybuild.cdx.json"


def _purl(name: str, version: str, filename: str) -> str:
    return f"pkg:pypi/{name}@{version}?file_name={urllib.parse.quote(filename)}"


def sbom(lock: Lock, *, options: dict[str, Any], epoch: int) -> dict[str, Any]:
    runtime = lock.runtime
    python = runtime.python_version
    components: list[dict[str, Any]] = [
        {
            "bom-ref": "runtime",
            "type": "application",
            "name": "cpython",
            "version": python,
            "description": f"python-build-standalone {runtime.release} {runtime.triple} "
            f"{runtime.flavor}",
            "hashes": [{"alg": "SHA-256", "content": runtime.sha256}],
            "externalReferences": [{"type": "distribution", "url": runtime.url}],
            "purl": f"pkg:generic/python-build-standalone@{python}%2B{runtime.release}"
            f"?download_url={urllib.parse.quote(runtime.url, safe='')}",
        }
    ]
    for wheel in sorted(lock.wheels, key=lambda w: w.name):
        components.append(
            {
                "bom-ref": f"wheel:{wheel.name}",
                "type": "library",
                "name": wheel.name,
                "version": wheel.version,
                "hashes": [{"alg": "SHA-256", "content": wheel.sha256}],
                "purl": _purl(wheel.name, wheel.version, wheel.filename),
            }
        )
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": utc_date(epoch),
            "tools": {
                "components": [{"type": "application", "name": "pybuild", "version": __version__}]
            },
            "component": {
                "bom-ref": "layer",
                "type": "application",
                "name": lock.name,
                "description": f"AWS Lambda layer for {lock.target.arch.value}, "
                f"glibc {lock.target.glibc_str}",
            },
            "properties": [
                {"name": f"pybuild:{key}", "value": str(value)}
                for key, value in sorted(options.items())
            ],
        },
        "components": components,
        "dependencies": [{"ref": "layer", "dependsOn": [c["bom-ref"] for c in components]}],
    }


def sbom_json(lock: Lock, *, options: dict[str, Any], epoch: int) -> str:
    return dumps_stable(sbom(lock, options=options, epoch=epoch))
