// Both module systems: the packed package, installed in a project whose package.json says
// "type": "commonjs" (what `npm init -y` writes) and in one that says "type": "module".
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { FAKE_BRIDGE, PACKAGE_DIR, PYTHON, runNode } from "../testing/support.mjs";

const run = promisify(execFile);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
let dir;
let tarball;

/** The names index.d.cts declares as values (classes, constants, functions). */
async function declaredValues() {
  const text = await readFile(path.join(PACKAGE_DIR, "index.d.cts"), "utf8");
  return [...text.matchAll(/^export declare (?:class|const|function) (\w+)/gm)]
    .map((m) => m[1])
    .sort();
}

/** A project with the packed package installed, and `files` written into it. */
async function project(name, type, files) {
  const root = path.join(dir, name);
  await mkdir(root);
  await writeFile(
    path.join(root, "package.json"),
    JSON.stringify({ name, version: "1.0.0", type }),
  );
  await run(npm, ["install", "--offline", "--no-audit", "--no-fund", tarball], { cwd: root });
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(root, file), text);
  return root;
}

const fakeCommand = JSON.stringify([PYTHON, FAKE_BRIDGE]);

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "pybuild-modules-"));
  await run(npm, ["pack", "--pack-destination", dir], { cwd: PACKAGE_DIR });
  tarball = path.join(
    dir,
    (await readdir(dir)).find((file) => file.endsWith(".tgz")),
  );
});
after(() => rm(dir, { recursive: true, force: true }));

test('require() in a "type": "commonjs" project', async () => {
  const root = await project("cjs-app", "commonjs", {
    "index.js": `
      const pybuild = require("pybuild-litellm-node");
      const client = new pybuild.LitellmClient({ command: ${fakeCommand}, args: [] });
      client.completion({ model: "m", messages: [{ role: "user", content: "from cjs" }] })
        .then(async (reply) => {
          const esm = await import("pybuild-litellm-node");
          console.log(JSON.stringify({
            content: reply.choices[0].message.content,
            names: Object.keys(pybuild).sort(),
            sameClasses: esm.APIError === pybuild.APIError && esm.LitellmClient === pybuild.LitellmClient,
          }));
          return client.close();
        });`,
  });
  const result = await runNode(["index.js"], { cwd: root });
  assert.equal(result.code, 0, result.stderr);
  const output = JSON.parse(result.stdout);
  assert.equal(output.content, "from cjs");
  assert.deepEqual(output.names, await declaredValues());
  assert.equal(output.sameClasses, true, "import and require must give the same classes");
});

test('import in a "type": "module" project', async () => {
  const root = await project("esm-app", "module", {
    "index.js": `
      import * as pybuild from "pybuild-litellm-node";
      const client = new pybuild.LitellmClient({ command: ${fakeCommand}, args: [] });
      const reply = await client.completion({ model: "m", messages: [{ role: "user", content: "from esm" }] });
      await client.close();
      console.log(JSON.stringify({ content: reply.choices[0].message.content, names: Object.keys(pybuild).sort() }));`,
  });
  const result = await runNode(["index.js"], { cwd: root });
  assert.equal(result.code, 0, result.stderr);
  const output = JSON.parse(result.stdout);
  assert.equal(output.content, "from esm");
  assert.deepEqual(output.names, await declaredValues());
});

test("the package's exports map: import, require and types for each", async () => {
  const manifest = JSON.parse(await readFile(path.join(PACKAGE_DIR, "package.json"), "utf8"));
  const entry = manifest.exports["."];
  assert.deepEqual(entry.import, { types: "./index.d.mts", default: "./index.mjs" });
  assert.deepEqual(entry.require, { types: "./index.d.cts", default: "./index.cjs" });
});
