// near-api-js (a client not written in Rust) against the devnet: it starts the devnet binary
// on a fresh home, then makes a view call and sends signed transactions.
//
// Run with `tests/js/run.sh` (builds the binary, installs near-api-js, runs `node --test`),
// or set DEVNET_BIN to a built `chainsig-devnet` and run `node --test` here.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Account, JsonRpcProvider, KeyPair, actions } from "near-api-js";

// (module
//   (import "env" "value_return" (func $value_return (param i64 i64)))
//   (memory (export "memory") 1)
//   (data (i32.const 0) "\"hi\"")
//   (func (export "hello") (call $value_return (i64.const 4) (i64.const 0))))
const HELLO_WASM = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 9, 2, 96, 2, 126, 126, 0, 96, 0, 0, 2, 20, 1, 3, 101, 110, 118,
  12, 118, 97, 108, 117, 101, 95, 114, 101, 116, 117, 114, 110, 0, 0, 3, 2, 1, 1, 5, 3, 1, 0, 1, 7,
  18, 2, 6, 109, 101, 109, 111, 114, 121, 2, 0, 5, 104, 101, 108, 108, 111, 0, 1, 10, 10, 1, 8, 0,
  66, 4, 66, 0, 16, 0, 11, 11, 10, 1, 0, 65, 0, 11, 4, 34, 104, 105, 34,
]);

const bin = process.env.DEVNET_BIN;
let devnet;
let home;
let url;

before(async () => {
  assert.ok(bin, "set DEVNET_BIN to the chainsig-devnet binary");
  home = mkdtempSync(join(tmpdir(), "devnet-js-"));
  devnet = spawn(bin, ["--home", join(home, "h"), "--rpc-addr", "127.0.0.1:0", "--block-time", "50"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("devnet did not start: " + out)), 30000);
    devnet.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/JSON-RPC on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    devnet.on("exit", (code) => reject(new Error(`devnet exited with ${code}: ${out}`)));
  });
});

after(() => {
  if (devnet) devnet.kill("SIGINT");
  if (home) rmSync(home, { recursive: true, force: true });
});

test("status, view call and signed transactions through near-api-js", async () => {
  const provider = new JsonRpcProvider({ url });
  const status = await provider.viewNodeStatus();
  assert.equal(status.chain_id, "localnet");

  const key = JSON.parse(readFileSync(join(home, "h", "keys", "test.near.json"), "utf8"));
  assert.equal(key.account_id, "test.near");
  const root = new Account("test.near", provider, key.secret_key);

  // Signed transaction: create an account with a key and a contract.
  const kp = KeyPair.fromRandom("ed25519");
  const outcome = await root.signAndSendTransaction({
    receiverId: "js.test.near",
    actions: [
      actions.createAccount(),
      actions.transfer(10n ** 24n * 5n),
      actions.addFullAccessKey(kp.getPublicKey()),
      actions.deployContract(HELLO_WASM),
    ],
  });
  assert.ok("SuccessValue" in outcome.status, JSON.stringify(outcome.status));

  // View call through the provider.
  const hello = await provider.callFunction({ contractId: "js.test.near", method: "hello", args: {} });
  assert.equal(hello, "hi");

  // The new account signs a transfer back with its own key.
  const js = new Account("js.test.near", provider, kp.toString());
  const before = await js.getBalance();
  await js.transfer({ receiverId: "test.near", amount: 10n ** 24n });
  const afterBalance = await js.getBalance();
  assert.ok(afterBalance < before - 10n ** 24n + 1n, `${before} -> ${afterBalance}`);

  // A view of the access key the transfer used.
  const ak = await provider.viewAccessKey({ accountId: "js.test.near", publicKey: kp.getPublicKey() });
  assert.ok(ak.nonce > 0n);
  assert.equal(ak.permission, "FullAccess");
});
