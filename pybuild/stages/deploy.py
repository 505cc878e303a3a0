"""What a deployer needs beside the zip, as whole files the real tools accept as they are:
`aws lambda publish-layer-version` input, a serverless.yml (Serverless Framework v3) and an AWS
SAM template, each with the layer and one Node.js function using it.

tests/test_deploy.py runs botocore's parameter validation, cfn-lint, `sam validate --lint`,
`sam build` and `serverless package` on them. What they encode:

- Runtimes come from the system profile (`data/profiles.toml`), each one looked up in
  `data/lambda-runtimes.toml` (AWS's deprecation and blocking dates, with where each was read).
  The function runs on the profile's first Node.js runtime. A runtime past its deprecation date
  on the day of the build is flagged: a comment at the top of both YAML files and a warning.
- The layer is its own artifact. The function's code is the `function/` directory beside these
  files (copy the handler there, e.g. integrations/node); the function package never holds the
  layer zip or anything else written beside it.
- serverless names a layer's CloudFormation resource from its key with its own rules
  (`lib/plugins/aws/lib/naming.js`, `getLambdaLayerLogicalId`); `serverless_logical_id`
  computes the same, so the function's `Ref` resolves for any layer name.
- serverless v3's schema knows no runtime newer than nodejs20.x, so the runtimes are set on the
  generated CloudFormation resources (`resources.extensions`, what AWS reads), and
  `configValidationMode: error` keeps every other setting checked.
- A timeout and memory size fit for litellm: serverless's default timeout (6 s) is shorter than a
  cold `import litellm`.
- Environment: see FUNCTION_ENVIRONMENT and NOT_SET.

A profile that is not a Lambda image (debian12) gets no deployment files.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

from pybuild.elf.policy import Profile
from pybuild.errors import ConfigError
from pybuild.model.target import Arch, Target
from pybuild.support.fsutil import atomic_write_text
from pybuild.support.jsonout import dumps_stable
from pybuild.ui import Ui

LAMBDA_ARCHITECTURES = {Arch.AARCH64: "arm64", Arch.X86_64: "x86_64"}
# What a function using the layer sets besides PYBUILD_PYTHON (where the interpreter is):
# litellm's local price map (otherwise it fetches it from GitHub at every cold start).
FUNCTION_ENVIRONMENT = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
# Left out on purpose, with the reason written into the files.
NOT_SET = (
    "PYTHONHOME and PYTHONPATH are not set: the interpreter finds its standard library and "
    "site-packages from its own path under /opt/python (pybuild smoke and pybuild invoke run it "
    "with Lambda's environment and neither), and the Node.js client starts Python with an "
    "environment of its own, so the function's would not reach it. NODE_OPTIONS is not set: the "
    "handler is plain ES modules and needs no flag."
)
FUNCTION_DIR = "function"  # the function's code, beside the deployment files
FUNCTION_KEY = "chat"  # the function's name in both files
HANDLER = "handler.handler"  # integrations/node/handler.mjs, export `handler`
MEMORY_MB = 1024  # litellm's import dominates a cold start; more memory is more CPU
TIMEOUT_SECONDS = 60  # a cold start (seconds) plus one model call (the client allows 50 s)


@dataclass(frozen=True, slots=True)
class LambdaRuntime:
    """One managed runtime and AWS's dates for it (`data/lambda-runtimes.toml`)."""

    identifier: str  # "nodejs24.x"
    system: str  # the profile of its image: "al2023" or "al2"
    deprecated: date
    block_create: date
    block_update: date

    @property
    def is_node(self) -> bool:
        """Whether it is a Node.js runtime (``nodejs*``), one the function can run on."""
        return self.identifier.startswith("nodejs")

    def status(self, today: date) -> str | None:
        """None while supported; otherwise what AWS no longer does for it, as one line."""
        if today < self.deprecated:
            return None
        head = f"{self.identifier} is deprecated since {self.deprecated}"
        if today >= self.block_update:
            return f"{head}: functions can be neither created nor updated with it"
        if today >= self.block_create:
            return (
                f"{head}: new functions are refused since {self.block_create}, updates from "
                f"{self.block_update}"
            )
        return (
            f"{head} (no security patches): new functions are refused from "
            f"{self.block_create}, updates from {self.block_update}"
        )


@cache
def load_runtimes() -> dict[str, LambdaRuntime]:
    """The runtime table, checked: every date is a date and names at least one known source."""
    text = importlib.resources.files("pybuild").joinpath("data/lambda-runtimes.toml")
    data = tomllib.loads(text.read_text("utf-8"))
    sources = set(data["sources"])
    runtimes = {}
    for identifier, raw in data["runtime"].items():
        dates = {key: raw[key] for key in ("deprecated", "block_create", "block_update")}
        for key, value in dates.items():
            cited = raw["sources"].get(key, [])
            if not isinstance(value, date) or not cited or not set(cited) <= sources:
                raise ConfigError(
                    f"lambda-runtimes.toml: {identifier}.{key} needs a date and a source"
                )
        runtimes[identifier] = LambdaRuntime(identifier, raw["system"], **dates)
    return runtimes


def profile_runtimes(profile: Profile) -> list[LambdaRuntime]:
    """The profile's runtimes, most preferred first; each must be in the table, on its system."""
    table = load_runtimes()
    found = []
    for identifier in profile.lambda_runtimes:
        runtime = table.get(identifier)
        if runtime is None or runtime.system != profile.name:
            raise ConfigError(
                f"profile {profile.name}: {identifier!r} is not a {profile.name} runtime in "
                f"lambda-runtimes.toml"
            )
        found.append(runtime)
    return found


def _normalized(name: str) -> str:
    """serverless v3's `getNormalizedResourceName`: `-` -> `Dash`, `_` -> `Underscore`, first
    character upper-cased (lodash `upperFirst`)."""
    normalized = name.replace("-", "Dash").replace("_", "Underscore")
    return normalized[:1].upper() + normalized[1:]


def serverless_logical_id(name: str) -> str:
    """The logical ID serverless v3 gives a layer's resource (`getLambdaLayerLogicalId`)."""
    return f"{_normalized(name)}LambdaLayer"


def serverless_function_logical_id(name: str) -> str:
    """The logical ID serverless v3 gives a function's resource (`getLambdaLogicalId`)."""
    return f"{_normalized(name)}LambdaFunction"


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the three files say; each file is a function of it."""

    name: str  # the layer's name
    zip_name: str
    description: str
    architecture: str  # "arm64" or "x86_64"
    runtimes: tuple[LambdaRuntime, ...]  # compatible, most preferred first
    environment: Mapping[str, str]  # the function's
    notes: tuple[str, ...] = ()  # runtimes past their deprecation date on the day of the build

    @property
    def function_runtime(self) -> str:
        """The function's runtime: the first Node.js one of `runtimes` (ConfigError if none is)."""
        node = [r for r in self.runtimes if r.is_node]
        if not node:
            raise ConfigError("the profile lists no Node.js runtime for the function")
        return node[0].identifier

    @property
    def runtime_names(self) -> list[str]:
        """The compatible runtimes' identifiers, most preferred first."""
        return [r.identifier for r in self.runtimes]

    @property
    def service(self) -> str:
        """A serverless service name (`^[a-zA-Z][0-9a-zA-Z-]+$`) for the function."""
        service = re.sub(r"[^0-9A-Za-z-]", "-", f"{self.name}-{FUNCTION_KEY}")
        return service if service[0].isalpha() else f"fn-{service}"


@dataclass(frozen=True, slots=True)
class DeployFiles:
    """Where the three files were written, and the deprecation notes they carry."""

    publish: Path
    serverless: Path
    sam: Path
    notes: tuple[str, ...] = ()


def _q(text: str) -> str:
    """A YAML scalar, double-quoted (JSON's string syntax is YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def _flow(items: Sequence[str]) -> str:
    return f"[{', '.join(items)}]"


def _mapping(values: Mapping[str, str], indent: int) -> str:
    return "".join(f"{' ' * indent}{key}: {_q(value)}\n" for key, value in values.items())


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _header(tool: str, deployment: Deployment) -> str:
    intro = (
        f"{tool} for {deployment.zip_name}, written by pybuild: the layer and one Node.js "
        f"function using it. Deploy from this directory, with the function's code in "
        f"./{FUNCTION_DIR}/ (for example integrations/node's handler.mjs with the client package: "
        "index.mjs, index.cjs, lib/, package.json)."
    )
    lines = _wrap(intro, 94)
    lines += [f"WARNING: {note}" for note in deployment.notes]
    lines += ["", *_wrap(NOT_SET, 94)]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def publish_json(deployment: Deployment) -> str:
    """`aws lambda publish-layer-version --cli-input-json` input (the zip goes in --zip-file)."""
    return dumps_stable(
        {
            "CompatibleArchitectures": [deployment.architecture],
            "CompatibleRuntimes": deployment.runtime_names,
            "Description": deployment.description,
            "LayerName": deployment.name,
        }
    )


def serverless_yaml(deployment: Deployment) -> str:
    """The serverless.yml (Serverless Framework v3): the layer, and the function that uses it with
    its code from `function/`; the runtimes are set on the generated CloudFormation resources."""
    d = deployment
    layer_id = serverless_logical_id(d.name)
    return (
        _header("serverless.yml (Serverless Framework v3)", d) + f"service: {d.service}\n"
        'frameworkVersion: "3"\n'
        "configValidationMode: error\n"
        "provider:\n"
        "  name: aws\n"
        f"  architecture: {d.architecture}\n"
        f"  memorySize: {MEMORY_MB}\n"
        f"  timeout: {TIMEOUT_SECONDS}\n"
        "  environment:\n" + _mapping(d.environment, 4) + "package:\n"
        "  # the function's code only: never the layer zip or the files written beside it\n"
        "  patterns:\n"
        '    - "!**"\n'
        f'    - "{FUNCTION_DIR}/**"\n'
        "layers:\n"
        f"  {d.name}:\n"
        "    package:\n"
        f"      artifact: {d.zip_name}\n"
        f"    compatibleArchitectures: {_flow([d.architecture])}\n"
        f"    description: {_q(d.description)}\n"
        "functions:\n"
        f"  {FUNCTION_KEY}:\n"
        f"    handler: {FUNCTION_DIR}/{HANDLER}\n"
        "    layers:\n"
        f"      - Ref: {layer_id}\n"
        "resources:\n"
        "  # serverless v3's schema knows no runtime after nodejs20.x: set them on the resources\n"
        "  extensions:\n"
        f"    {serverless_function_logical_id(FUNCTION_KEY)}:\n"
        "      Properties:\n"
        f"        Runtime: {d.function_runtime}\n"
        f"    {layer_id}:\n"
        "      Properties:\n"
        f"        CompatibleRuntimes: {_flow(d.runtime_names)}\n"
    )


def sam_yaml(deployment: Deployment) -> str:
    """The AWS SAM template: the layer, and the function (``ChatFunction``) that uses it with its
    code from `function/`."""
    d = deployment
    layer_id = f"{_normalized(d.name)}Layer"
    return (
        _header("AWS SAM template", d) + 'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        f"Description: {_q(d.description)}\n"
        "Resources:\n"
        f"  {layer_id}:\n"
        "    Type: AWS::Serverless::LayerVersion\n"
        "    Properties:\n"
        f"      LayerName: {d.name}\n"
        f"      Description: {_q(d.description)}\n"
        f"      ContentUri: {d.zip_name}\n"
        f"      CompatibleArchitectures: {_flow([d.architecture])}\n"
        f"      CompatibleRuntimes: {_flow(d.runtime_names)}\n"
        "  ChatFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        f"      Runtime: {d.function_runtime}\n"
        f"      Architectures: {_flow([d.architecture])}\n"
        f"      Handler: {HANDLER}\n"
        f"      CodeUri: {FUNCTION_DIR}/\n"
        f"      MemorySize: {MEMORY_MB}\n"
        f"      Timeout: {TIMEOUT_SECONDS}\n"
        f"      Layers: [!Ref {layer_id}]\n"
        "      Environment:\n"
        "        Variables:\n" + _mapping(d.environment, 10)
    )


def deployment_for(
    *,
    name: str,
    zip_name: str,
    sha256: str,
    target: Target,
    profile: Profile,
    python: str,
    today: date,
) -> Deployment:
    """What the files say for one layer zip. `python` is the interpreter's name (``python3.11``);
    `sha256`, the zip's, goes into the description (cut to Lambda's 256 characters); a runtime
    deprecated by `today` gets a note. ConfigError if a runtime of the profile is not in
    lambda-runtimes.toml."""
    runtimes = tuple(profile_runtimes(profile))
    architecture = LAMBDA_ARCHITECTURES[target.arch]
    description = (
        f"{name}: CPython {target.python} + locked wheels for {architecture} "
        f"({profile.name}); zip sha256 {sha256[:16]}"
    )
    return Deployment(
        name=name,
        zip_name=zip_name,
        description=description[:256],
        architecture=architecture,
        runtimes=runtimes,
        environment={"PYBUILD_PYTHON": f"/opt/python/bin/{python}", **FUNCTION_ENVIRONMENT},
        notes=tuple(s for r in runtimes if (s := r.status(today)) is not None),
    )


def write_deploy_files(
    *,
    name: str,
    zip_path: Path,
    sha256: str,
    target: Target,
    profile: Profile,
    python: str,
    today: date | None = None,
    ui: Ui | None = None,
) -> DeployFiles | None:
    """Write the three files beside `zip_path`; None when the profile is not a Lambda image.
    Runtimes past their deprecation date on `today` (default: today, UTC) are flagged."""
    if not profile.lambda_runtimes:
        return None
    deployment = deployment_for(
        name=name,
        zip_name=zip_path.name,
        sha256=sha256,
        target=target,
        profile=profile,
        python=python,
        today=today or datetime.now(UTC).date(),
    )
    if ui is not None:
        for note in deployment.notes:
            ui.warn(f"deployment files: {note}")
    out = zip_path.parent
    files = DeployFiles(
        publish=out / f"{name}.publish-layer-version.json",
        serverless=out / f"{name}.serverless.yml",
        sam=out / f"{name}.sam.yaml",
        notes=deployment.notes,
    )
    atomic_write_text(files.publish, publish_json(deployment))
    atomic_write_text(files.serverless, serverless_yaml(deployment))
    atomic_write_text(files.sam, sam_yaml(deployment))
    return files
