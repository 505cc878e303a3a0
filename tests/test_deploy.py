"""The deployment files (pybuild/stages/deploy.py), checked as the tools that deploy them read
them: botocore's service model for the publish JSON, cfn-lint, `sam validate --lint` and
`sam build` for the SAM template, `serverless package` (v3, its one CloudFormation call answered
by a stub on loopback) and cfn-lint on what it compiles for the serverless file.

The tools live outside pybuild's environment, pinned by scripts/test: .venv-aws (cfn-lint,
aws-sam-cli, botocore) and .node-tools (serverless). The fast tests read the written files only,
so that each one also shows what the files written before issue 15 got wrong.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socketserver
import ssl
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import REPO
from pybuild.elf.policy import Profile, load_profiles
from pybuild.model.target import Arch, Target
from pybuild.model.versions import GlibcVersion, PythonVersion
from pybuild.stages.deploy import DeployFiles, write_deploy_files

AWS_VENV = REPO / ".venv-aws" / "bin"
NODE_TOOLS = REPO / ".node-tools" / "node_modules"
TARGET = Target(arch=Arch.AARCH64, glibc=GlibcVersion(2, 34), python=PythonVersion(3, 11))
# The shipped handler and the client package it imports by name (self-reference through the
# package's `exports`): what a function directory holds.
NODE_FILES = [
    "handler.mjs",
    "index.mjs",
    "index.cjs",
    "index.d.mts",
    "index.d.cts",
    "package.json",
    "lib",
]
# Layer names and the logical IDs serverless v3 gives their resources (naming.js,
# getLambdaLayerLogicalId); test_logical_ids_match_serverless asks serverless itself.
LOGICAL_IDS = {
    "litellm": "LitellmLambdaLayer",
    "litellm-layer": "LitellmDashlayerLambdaLayer",
    "my_layer": "MyUnderscorelayerLambdaLayer",
    "myLayer": "MyLayerLambdaLayer",
    "LLM2": "LLM2LambdaLayer",
    "my_layer-x": "MyUnderscorelayerDashxLambdaLayer",
}


def _write(directory: Path, name: str, profile: str = "al2023") -> DeployFiles:
    """The deployment files for a small real zip named `name`, and the shipped Node handler in
    ./function, as a user lays them out."""
    directory.mkdir(parents=True, exist_ok=True)
    zip_path = directory / f"{name}.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("python/bin/python3.11", b"\x7fELF" + bytes(60))
    (directory / f"{name}.report.json").write_text("{}\n")  # a sibling, as a build writes
    function = directory / "function"
    function.mkdir(exist_ok=True)
    for file in NODE_FILES:
        source = REPO / "integrations" / "node" / file
        if source.is_dir():
            shutil.copytree(source, function / file, dirs_exist_ok=True)
        else:
            shutil.copy(source, function / file)
    files = write_deploy_files(
        name=name,
        zip_path=zip_path,
        sha256="ab" * 32,
        target=TARGET,
        profile=load_profiles()[profile],
        python="python3.11",
    )
    assert files is not None
    return files


# --- fast: one test per finding -----------------------------------------------------------


@pytest.mark.parametrize(("name", "logical_id"), sorted(LOGICAL_IDS.items()))
def test_serverless_ref_names_the_layer_as_serverless_does(
    tmp_path: Path, name: str, logical_id: str
) -> None:
    """Finding 1: `MyLayerXLambdaLayer` for `my_layer-x` was rejected (cfn-lint E1020)."""
    text = _write(tmp_path, name).serverless.read_text()
    assert re.findall(r"- Ref: (\S+)", text) == [logical_id]


def test_the_function_package_is_only_the_function(tmp_path: Path) -> None:
    """Finding 2: both files packaged the deployment directory, layer zip included, as the
    function's code."""
    files = _write(tmp_path, "litellm")
    serverless = files.serverless.read_text()
    patterns = re.search(r"\n  patterns:\n((?:    - .*\n)+)", serverless)
    assert patterns is not None
    assert patterns[1].split() == ["-", '"!**"', "-", '"function/**"']
    assert "handler: function/handler.handler" in serverless
    sam = files.sam.read_text()
    assert re.findall(r"CodeUri: (\S+)", sam) == ["function/"]
    assert "ContentUri: litellm.zip" in sam


def test_timeouts_and_memory_are_set(tmp_path: Path) -> None:
    """Finding 3: serverless ran with its 6 s default timeout; a cold import takes seconds."""
    files = _write(tmp_path, "litellm")
    serverless = files.serverless.read_text()
    assert "\n  timeout: 60\n" in serverless and "\n  memorySize: 1024\n" in serverless
    sam = files.sam.read_text()
    assert "Timeout: 60" in sam and "MemorySize: 1024" in sam


def test_python_and_node_variables_say_why_not(tmp_path: Path) -> None:
    """Finding 3: PYTHONHOME, PYTHONPATH and NODE_OPTIONS are left out, and the files say why."""
    files = _write(tmp_path, "litellm")
    for path in (files.serverless, files.sam):
        text = path.read_text()
        settings = [line for line in text.splitlines() if not line.startswith("#")]
        for variable in ("PYTHONHOME", "PYTHONPATH", "NODE_OPTIONS"):
            assert not any(variable in line for line in settings), (path.name, variable)
            assert f"# {variable}" in text or f" {variable} " in text, (path.name, variable)
        assert 'LITELLM_LOCAL_MODEL_COST_MAP: "True"' in text


def test_runtimes_are_current(tmp_path: Path) -> None:
    """Finding 4: nodejs20.x (deprecated 2026-04-30) was the function's runtime and nodejs24.x
    was missing."""
    files = _write(tmp_path, "litellm")
    publish = json.loads(files.publish.read_text())
    assert publish["CompatibleRuntimes"] == ["nodejs24.x", "nodejs22.x", "provided.al2023"]
    for path in (files.serverless, files.sam):
        assert re.findall(r"Runtime: (\S+)", path.read_text()) == ["nodejs24.x"], path.name
    assert "nodejs20.x" not in files.sam.read_text()
    assert files.notes == ()


def test_deprecated_runtimes_are_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 4: the al2 profile wrote nodejs18.x (deprecated 2025-09-01) without a word."""
    from pybuild.ui import Ui

    zip_path = tmp_path / "old.zip"
    zip_path.write_bytes(b"")
    files = write_deploy_files(
        name="old",
        zip_path=zip_path,
        sha256="00" * 32,
        target=Target(arch=Arch.AARCH64, glibc=GlibcVersion(2, 26), python=PythonVersion(3, 11)),
        profile=load_profiles()["al2"],
        python="python3.11",
        today=date(2026, 12, 2),
        ui=Ui(),
    )
    assert files is not None
    assert [note.split()[0] for note in files.notes] == ["nodejs18.x", "provided.al2"]
    assert "deprecated since 2025-09-01" in files.notes[0]
    for path in (files.serverless, files.sam):
        assert f"# WARNING: {files.notes[0]}" in path.read_text()
    assert "warning: deployment files: nodejs18.x is deprecated" in capsys.readouterr().err
    # the same table flags today's runtimes when their day comes
    later = write_deploy_files(
        name="current",
        zip_path=zip_path,
        sha256="00" * 32,
        target=TARGET,
        profile=load_profiles()["al2023"],
        python="python3.11",
        today=date(2027, 6, 15),
    )
    assert later is not None
    assert [note.split()[0] for note in later.notes] == ["nodejs22.x"]
    assert "new functions are refused since 2027-06-01" in later.notes[0]


def test_sam_template_stands_alone(tmp_path: Path) -> None:
    """Finding 4: without its Transform header the SAM file did not validate on its own."""
    text = _write(tmp_path, "litellm").sam.read_text()
    assert 'AWSTemplateFormatVersion: "2010-09-09"\n' in text
    assert "Transform: AWS::Serverless-2016-10-31\n" in text


def test_profiles_name_runtimes_of_their_own_system() -> None:
    from pybuild.errors import ConfigError
    from pybuild.stages.deploy import load_runtimes, profile_runtimes

    table = load_runtimes()
    for profile in load_profiles().values():
        for runtime in profile_runtimes(profile):
            assert runtime.system == profile.name
    for runtime in table.values():
        assert runtime.deprecated <= runtime.block_create <= runtime.block_update, runtime
    wrong = Profile("al2", "", GlibcVersion(2, 26), frozenset(), ("nodejs24.x",))
    with pytest.raises(ConfigError, match="not a al2 runtime"):
        profile_runtimes(wrong)


def test_no_deployment_files_for_a_profile_that_is_not_lambda(tmp_path: Path) -> None:
    files = write_deploy_files(
        name="x",
        zip_path=tmp_path / "x.zip",
        sha256="00" * 32,
        target=TARGET,
        profile=load_profiles()["debian12"],
        python="python3.11",
    )
    assert files is None and not list(tmp_path.iterdir())


# --- the real tools -------------------------------------------------------------------------


def _tool(path: Path) -> str:
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} is missing: run scripts/test, which installs it")
    return str(path)


def _aws_env(home: Path, **extra: str) -> dict[str, str]:
    """Fake credentials, no telemetry, and a home of the test's own (serverless and sam write
    their settings there)."""
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "AKIAPYBUILDTESTS0000",
        "AWS_SECRET_ACCESS_KEY": "pybuild-tests-not-a-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
        **extra,
    }


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["litellm", "my_layer-x"])
def test_publish_json_passes_botocore(tmp_path: Path, name: str) -> None:
    python = _tool(AWS_VENV / "python")
    files = _write(tmp_path, name)
    script = r"""
import json, sys, botocore, botocore.session
from botocore.validate import ParamValidator
operation = botocore.session.get_session().get_service_model("lambda").operation_model(
    "PublishLayerVersion")
params = json.load(open(sys.argv[1]))
params["Content"] = {"ZipFile": open(sys.argv[2], "rb").read()}  # what --zip-file adds
report = ParamValidator().validate(params, operation.input_shape)
members = operation.input_shape.members
enums = {"CompatibleRuntimes": members["CompatibleRuntimes"].member.enum,
         "CompatibleArchitectures": members["CompatibleArchitectures"].member.enum}
unknown = [v for key, allowed in enums.items() for v in params[key] if v not in allowed]
print(json.dumps({"errors": report.generate_report(), "unknown": unknown,
                  "botocore": botocore.__version__}))
"""
    completed = _run(
        [python, "-c", script, str(files.publish), str(tmp_path / f"{name}.zip")],
        tmp_path,
        _aws_env(tmp_path / "home"),
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["errors"] == "" and result["unknown"] == [], result


@pytest.mark.slow
@pytest.mark.parametrize("name", ["litellm", "my_layer-x", "LLM2"])
def test_sam_template_passes_cfn_lint_and_sam(tmp_path: Path, name: str) -> None:
    cfn_lint, sam = _tool(AWS_VENV / "cfn-lint"), _tool(AWS_VENV / "sam")
    files = _write(tmp_path, name)
    linted = _run([cfn_lint, files.sam.name], tmp_path, _aws_env(tmp_path / "home"))
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout + linted.stderr
    validated = _run(
        [sam, "validate", "--lint", "-t", files.sam.name], tmp_path, _aws_env(tmp_path / "home")
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    built = _run(
        [sam, "build", "-t", files.sam.name, "--build-dir", str(tmp_path / "built")],
        tmp_path,
        _aws_env(tmp_path / "home"),
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    function = tmp_path / "built" / "ChatFunction"
    assert sorted(p.name for p in function.iterdir()) == sorted(NODE_FILES)


@pytest.mark.slow
def test_cfn_lint_warns_about_what_pybuild_flags(tmp_path: Path) -> None:
    cfn_lint = _tool(AWS_VENV / "cfn-lint")
    files = _write(tmp_path, "old", profile="al2")
    linted = _run([cfn_lint, files.sam.name], tmp_path, _aws_env(tmp_path / "home"))
    warned = set(re.findall(r"Runtime '([^']+)' was deprecated", linted.stdout))
    assert warned == {"nodejs18.x"}, linted.stdout  # the function's runtime
    assert {note.split()[0] for note in files.notes} >= warned


@pytest.mark.slow
def test_runtime_dates_agree_with_cfn_lint(tmp_path: Path) -> None:
    python = _tool(AWS_VENV / "python")
    from pybuild.stages.deploy import load_runtimes

    script = (
        "import json, importlib.resources as r; print(r.files('cfnlint.data.AdditionalSpecs')"
        ".joinpath('LmbdRuntimeLifecycle.json').read_text())"
    )
    completed = _run([python, "-c", script], REPO, _aws_env(tmp_path / "home"))
    assert completed.returncode == 0, completed.stderr
    theirs = json.loads(completed.stdout)
    for identifier, runtime in load_runtimes().items():
        dates = theirs[identifier]
        assert str(runtime.deprecated) == dates["deprecated"], identifier
        assert str(runtime.block_create) == dates["create-block"], identifier
        assert str(runtime.block_update) == dates["update-block"], identifier


@pytest.mark.slow
def test_logical_ids_match_serverless(tmp_path: Path) -> None:
    naming = NODE_TOOLS / "serverless" / "lib" / "plugins" / "aws" / "lib" / "naming.js"
    _tool(naming)
    from pybuild.stages.deploy import serverless_function_logical_id, serverless_logical_id

    names = [*LOGICAL_IDS, "a", "9lives", "x-_-y", "__init__", "A" * 140, "chat"]
    script = (
        "const naming = require(process.argv[1]); const names = JSON.parse(process.argv[2]);"
        "console.log(JSON.stringify(names.map((n) => [naming.getLambdaLayerLogicalId(n),"
        " naming.getLambdaLogicalId(n)])));"
    )
    completed = _run(
        ["node", "-e", script, str(naming), json.dumps(names)], tmp_path, dict(os.environ)
    )
    assert completed.returncode == 0, completed.stderr
    theirs = json.loads(completed.stdout)
    ours = [[serverless_logical_id(n), serverless_function_logical_id(n)] for n in names]
    assert ours == theirs
    assert [LOGICAL_IDS[n] for n in LOGICAL_IDS] == [t[0] for t in theirs[: len(LOGICAL_IDS)]]


class _CloudFormationStub(socketserver.ThreadingTCPServer):
    """An HTTPS proxy on loopback that answers CloudFormation itself, with a certificate made
    for the test: `DescribeStacks` -> "Stack ... does not exist" (a first deployment). Any other
    host is refused, so nothing leaves the machine."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls
        self.actions: list[str] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _CloudFormationStub

    def handle(self) -> None:
        request = self.rfile.readline().decode("latin-1").split()
        while self.rfile.readline().strip():
            pass
        if (
            len(request) < 2
            or request[0] != "CONNECT"
            or not request[1].startswith("cloudformation.")
        ):
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        connection = self.server.tls.wrap_socket(self.connection, server_side=True)
        try:
            _CloudFormationApi(connection, self.client_address, self.server)
        finally:
            connection.close()


class _CloudFormationApi(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CloudFormationStub

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        action = re.search(r"Action=(\w+)", body)
        self.server.actions.append(action[1] if action else body[:80])
        xml = (
            b'<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
            b"<Error><Type>Sender</Type><Code>ValidationError</Code>"
            b"<Message>Stack with id pybuild-tests does not exist</Message></Error>"
            b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        )
        self.send_response(400)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(xml)))
        self.end_headers()
        self.wfile.write(xml)


@pytest.fixture(scope="module")
def cloudformation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(proxy URL, CA file) for Node: HTTPS_PROXY and NODE_EXTRA_CA_CERTS."""
    directory = tmp_path_factory.mktemp("cloudformation")
    host = "cloudformation.us-east-1.amazonaws.com"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
         "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    stub = _CloudFormationStub(tls)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{stub.server_address[1]}", directory / "cert.pem"
    finally:
        stub.shutdown()
        stub.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["litellm", "my_layer-x", "myLayer"])
def test_serverless_package(tmp_path: Path, name: str, cloudformation: tuple[str, Path]) -> None:
    serverless = _tool(NODE_TOOLS / ".bin" / "serverless")
    cfn_lint = _tool(AWS_VENV / "cfn-lint")
    files = _write(tmp_path, name)
    shutil.copy(files.serverless, tmp_path / "serverless.yml")
    proxy, ca = cloudformation
    env = _aws_env(
        tmp_path / "home",
        HTTPS_PROXY=proxy,
        NODE_EXTRA_CA_CERTS=str(ca),
        SLS_TELEMETRY_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off",
        SLS_AWS_REQUEST_MAX_RETRIES="0",
    )
    packaged = _run([serverless, "package"], tmp_path, env)
    output = packaged.stdout + packaged.stderr
    assert packaged.returncode == 0, output[-4000:]
    assert "warning" not in output.lower(), output[-4000:]

    out = tmp_path / ".serverless"
    template = json.loads((out / "cloudformation-template-update-stack.json").read_text())
    resources = template["Resources"]
    layer = resources[LOGICAL_IDS[name]]
    assert layer["Type"] == "AWS::Lambda::LayerVersion"
    assert layer["Properties"]["Content"]["S3Key"].endswith(f"/{name}.zip")
    assert layer["Properties"]["CompatibleRuntimes"] == [
        "nodejs24.x",
        "nodejs22.x",
        "provided.al2023",
    ]
    function = resources["ChatLambdaFunction"]["Properties"]
    assert function["Layers"] == [{"Ref": LOGICAL_IDS[name]}]
    assert function["Runtime"] == "nodejs24.x"
    assert (function["Timeout"], function["MemorySize"]) == (60, 1024)
    assert function["Architectures"] == ["arm64"]
    # the function's package: the function's files, nothing written beside them
    package = out / f"{function['Code']['S3Key'].rsplit('/', 1)[1]}"
    with zipfile.ZipFile(package) as archive:
        node = REPO / "integrations" / "node"
        expected = [
            f"function/{p.relative_to(node).as_posix()}"
            for f in NODE_FILES
            for p in ([node / f] if (node / f).is_file() else sorted((node / f).rglob("*")))
        ]
        assert sorted(archive.namelist()) == sorted(expected)
    assert package.stat().st_size < 100_000

    linted = _run([cfn_lint, str(out / "cloudformation-template-update-stack.json")], tmp_path, env)
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout + linted.stderr
