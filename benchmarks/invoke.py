"""A Lambda invocation of the shipped Node.js handler on the naive layer and on pybuild's, in one
run: the cold first response and warm latency, through `pybuild invoke`'s machinery.

Run: .venv/bin/python benchmarks/invoke.py [--rounds N] [--warm N]   (needs qemu-user-static,
node, network for the first build; aws-lambda-ric from .node-tools when scripts/test installed
it, else pybuild's runtime loop)

- naive: `pip install --target` of the same pinned wheels, zipped (benchmarks/layer.py), plus
  the bridge the handler talks to (layer/bridge/litellm_bridge.py, as source);
- pybuild: `pybuild build` of examples/debian12-arm64 (the reference layer on Debian's Python).

Each round starts a fresh execution environment per layer (interleaved, so both see the same
machine load): one cold invocation, then --warm warm ones, each a chat request
(integrations/node/handler.mjs, unchanged) answered by a fake OpenAI provider on loopback.
The layer is at /opt read-only and its Python runs under qemu-aarch64-static, so absolute times
are not Lambda's (Graviton runs natively); the ratios are what carries over.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from _common import DEBIAN_EXAMPLE, ROOT, write_section
from layer import naive_build
from pybuild.cli import main as pybuild
from pybuild.invoke import FunctionConfig, function_session
from pybuild.invoke.checklist import CHAT_EVENT, REPLY, fake_provider, provider_environment
from pybuild.invoke.clients import RuntimeClient, loop_client, ric_client
from pybuild.model.layerfile import load_layer
from pybuild.runtimes.debian import DebianProvider
from pybuild.smoke.sysroot import build_sysroot
from pybuild.stages.deploy import FUNCTION_ENVIRONMENT
from pybuild.support.cache import default_cache_dir
from pybuild.ui import Ui

HANDLER_DIR = ROOT / "integrations" / "node"
BRIDGE = ROOT / "layer" / "bridge" / "litellm_bridge.py"
RIC = ROOT / ".node-tools" / "node_modules" / "aws-lambda-ric"


def _layers(work: Path) -> dict[str, Path]:
    out = work / "pybuild" / "dist"
    assert pybuild(["build", "-q", "--layer", str(DEBIAN_EXAMPLE), "--out", str(out)]) == 0
    layer = load_layer(DEBIAN_EXAMPLE)
    naive_zip, _ = naive_build(work, layer)
    # the bridge the handler talks to, copied in as a user would (pybuild adds it by [include])
    site = DebianProvider().layout(layer.target).site_packages
    with zipfile.ZipFile(naive_zip, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.write(BRIDGE, f"{site}/{BRIDGE.name}")
    return {"naive": naive_zip, "pybuild": out / "litellm-debian12.zip"}


def _client() -> RuntimeClient:
    return ric_client(RIC, "handler.handler") if RIC.is_dir() else loop_client()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm", type=int, default=5)
    args = parser.parse_args()
    ui = Ui()
    sysroot = build_sysroot(default_cache_dir(), ui)
    client = _client()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    cold: dict[str, list[float]] = {"naive": [], "pybuild": []}
    init: dict[str, list[float]] = {"naive": [], "pybuild": []}
    warm: dict[str, list[float]] = {"naive": [], "pybuild": []}
    memory: dict[str, list[int]] = {"naive": [], "pybuild": []}
    chat = json.dumps(CHAT_EVENT).encode()
    with tempfile.TemporaryDirectory(prefix="pybuild-bench-invoke-") as tmp:
        zips = _layers(Path(tmp))
        sizes = {name: path.stat().st_size for name, path in zips.items()}
        with fake_provider() as provider:
            env = {**FUNCTION_ENVIRONMENT, **provider_environment(provider)}
            config = FunctionConfig(
                task_root=HANDLER_DIR, timeout=300, init_timeout=300, env=env, memory_mb=1024
            )
            for round_number in range(args.rounds):
                for name, path in zips.items():
                    with function_session(
                        config, client, path, sysroot=sysroot, log=lambda _line: None
                    ) as (function, how):
                        results = [function.invoke(chat) for _ in range(1 + args.warm)]
                    for result in results:
                        assert result.ok and REPLY in result.body.decode(), (name, result)
                    assert results[0].cold and not any(r.cold for r in results[1:]), name
                    cold[name].append(round(results[0].first_response_ms, 1))
                    init[name].append(round(results[0].init_ms or 0.0, 1))
                    warm[name] += [round(r.duration_ms, 1) for r in results[1:]]
                    memory[name].append(max(r.max_memory_mb for r in results))
                ui.info(
                    f"round {round_number + 1}/{args.rounds}: cold first response naive "
                    f"{cold['naive'][-1] / 1000:.1f} s, pybuild {cold['pybuild'][-1] / 1000:.1f} s"
                )
    at_opt = "layer at /opt (read-only bind mount" in how
    median = {
        name: {
            "cold": statistics.median(cold[name]),
            "warm": statistics.median(warm[name]),
            "memory": statistics.median(memory[name]),
        }
        for name in cold
    }
    cold_ratio = median["pybuild"]["cold"] / median["naive"]["cold"]
    warm_ratio = median["pybuild"]["warm"] / median["naive"]["warm"]
    harness = (
        f"{client.name} on Node.js {node.stdout.strip()}, the layer's Python under "
        f"qemu-aarch64-static with the Debian 12 arm64 sysroot, "
        f"{'layer at /opt (read-only bind mount)' if at_opt else 'layer relocated (not root)'}"
    )
    data: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "harness": harness,
        "rounds": args.rounds,
        "warm_per_round": args.warm,
        "zip_bytes": sizes,
        "cold_first_response_ms": cold,
        "init_duration_ms": init,
        "warm_duration_ms": warm,
        "max_memory_mb": memory,
        "cold_ratio": round(cold_ratio, 3),
        "warm_ratio": round(warm_ratio, 3),
    }
    naive, ours = median["naive"], median["pybuild"]
    markdown = f"""
## Lambda invocation: pybuild vs naive (`pybuild invoke`)

The shipped handler (`integrations/node/handler.mjs`, unchanged) invoked through a local Lambda
Runtime API, with a chat request answered by a fake OpenAI provider on loopback: per round and
layer a fresh execution environment, one cold invocation and {args.warm} warm ones; {args.rounds}
rounds, layers interleaved, same machine ({data["machine"]}). Harness: {harness}.
Absolute times are qemu's, not Graviton's; the ratios are what carries over.
Re-run: `.venv/bin/python benchmarks/invoke.py`.

| | naive (`pip install --target`, `zip -r -9`) | pybuild |
|---|---:|---:|
| zipped | {sizes["naive"]:,} | {sizes["pybuild"]:,} |
| cold first response (Init Duration + Duration, median) | {naive["cold"] / 1000:.2f} s | **{ours["cold"] / 1000:.2f} s** |
| warm Duration (median of {args.rounds * args.warm}) | {naive["warm"]:.0f} ms | {ours["warm"]:.0f} ms |
| Max Memory Used (median; includes qemu's own) | {naive["memory"]:.0f} MB | {ours["memory"]:.0f} MB |

- Cold first response ratio pybuild / naive: **{cold_ratio:.2f}**. The handler starts Python
  at module scope, in Lambda's init phase, and waits for it there at most 8 s
  (`PYBUILD_INIT_WAIT_MS`; Lambda stops an on-demand init at 10 s); what is left of the start
  and `import litellm` falls into the first invocation's Duration. Init Duration, median:
  {statistics.median(init["naive"]):.0f} ms naive, {statistics.median(init["pybuild"]):.0f} ms pybuild (under qemu both reach the 8 s cap; on
  Lambda's own CPUs more of the start fits in the init). The naive layer ships no bytecode and
  `/opt` is read-only, so it compiles what it imports at every cold start.
- Warm Duration ratio pybuild / naive: {warm_ratio:.2f}. Warm requests reuse the running Python
  in both layers and cost one request through the bridge: the layer makes no difference there.
"""
    write_section("invoke", markdown, data)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
