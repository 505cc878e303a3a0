"""What a deployer needs beside the zip: `aws lambda publish-layer-version` input, and
serverless.yml and AWS SAM fragments (architecture, layer artifact, environment).

Written by hand as text (a few lines each, no YAML library), deterministic like the zip. The
compatible runtimes follow the system profile: Amazon Linux 2023 (glibc 2.34) gives nodejs20.x,
nodejs22.x and provided.al2023. A profile that is not a Lambda image (the test stand-in) gets no
deployment files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pybuild.elf.policy import Profile
from pybuild.model.target import Arch, Target
from pybuild.support.fsutil import atomic_write_text
from pybuild.support.jsonout import dumps_stable

LAMBDA_ARCHITECTURES = {Arch.AARCH64: "arm64", Arch.X86_64: "x86_64"}
# What a function using the layer sets: where the interpreter is, and litellm's local price map
# (otherwise it fetches it from GitHub at every cold start).
FUNCTION_ENVIRONMENT = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}


@dataclass(frozen=True, slots=True)
class DeployFiles:
    publish: Path
    serverless: Path
    sam: Path


def _title(name: str) -> str:
    """`my-layer` -> `MyLayer`, as serverless names a layer's CloudFormation resource."""
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def write_deploy_files(
    *, name: str, zip_path: Path, sha256: str, target: Target, profile: Profile, python: str
) -> DeployFiles | None:
    """Write the three files beside `zip_path`; None when the profile is not a Lambda image."""
    if not profile.lambda_runtimes:
        return None
    architecture = LAMBDA_ARCHITECTURES[target.arch]
    runtimes = list(profile.lambda_runtimes)
    interpreter = f"/opt/python/bin/{python}"
    description = (
        f"{name}: CPython {target.python} + locked wheels for {architecture} "
        f"({profile.name}); zip sha256 {sha256[:16]}"
    )
    environment = {"PYBUILD_PYTHON": interpreter, **FUNCTION_ENVIRONMENT}
    out = zip_path.parent

    publish = out / f"{name}.publish-layer-version.json"
    atomic_write_text(
        publish,
        dumps_stable(
            {
                "CompatibleArchitectures": [architecture],
                "CompatibleRuntimes": runtimes,
                "Description": description[:256],
                "LayerName": name,
            }
        ),
    )

    env_lines = "".join(f'        {key}: "{value}"\n' for key, value in environment.items())
    title = _title(name)
    serverless = out / f"{name}.serverless.yml"
    atomic_write_text(
        serverless,
        (
            f"# serverless.yml fragment for {zip_path.name} (written by pybuild)\n"
            f"provider:\n"
            f"  architecture: {architecture}\n"
            f"  runtime: {runtimes[0]}\n"
            f"layers:\n"
            f"  {name}:\n"
            f"    package:\n"
            f"      artifact: {zip_path.name}\n"
            f"    compatibleArchitectures: [{architecture}]\n"
            f"    compatibleRuntimes: [{', '.join(runtimes)}]\n"
            f'    description: "{description}"\n'
            f"functions:\n"
            f"  chat:\n"
            f"    handler: handler.handler\n"
            f"    layers:\n"
            f"      - Ref: {title}LambdaLayer\n"
            f"    environment:\n" + env_lines.replace("        ", "      ")
        ),
    )

    sam = out / f"{name}.sam.yaml"
    atomic_write_text(
        sam,
        (
            f"# AWS SAM fragment for {zip_path.name} (written by pybuild)\n"
            f"Resources:\n"
            f"  {title}Layer:\n"
            f"    Type: AWS::Serverless::LayerVersion\n"
            f"    Properties:\n"
            f"      LayerName: {name}\n"
            f'      Description: "{description}"\n'
            f"      ContentUri: {zip_path.name}\n"
            f"      CompatibleArchitectures: [{architecture}]\n"
            f"      CompatibleRuntimes: [{', '.join(runtimes)}]\n"
            f"  ChatFunction:\n"
            f"    Type: AWS::Serverless::Function\n"
            f"    Properties:\n"
            f"      Runtime: {runtimes[0]}\n"
            f"      Architectures: [{architecture}]\n"
            f"      Handler: handler.handler\n"
            f"      CodeUri: .\n"
            f"      MemorySize: 1024\n"
            f"      Timeout: 60\n"
            f"      Layers: [!Ref {title}Layer]\n"
            f"      Environment:\n"
            f"        Variables:\n" + env_lines.replace("        ", "          ")
        ),
    )
    return DeployFiles(publish, serverless, sam)
