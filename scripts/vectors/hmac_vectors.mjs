// The npm half of hmac_vectors.py (which installs the packages and runs this):
// vectors for GitHub, Linear, Webflow, Zoom, Resend, Shopify and Notion from their official SDKs.
//
//     node scripts/vectors/hmac_vectors.mjs tests/vectors/hmac   (NODE_PATH = their node_modules)

import { createHmac } from "node:crypto";
import { writeFileSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";

// The packages live in the working directory's node_modules, not beside this script.
const MODULES = join(process.cwd(), "node_modules");
const require = createRequire(join(MODULES, "noop.js"));
const OUT = process.argv[2];
const TIMESTAMP = 1767225600; // 2026-01-01T00:00:00Z
const SECRET = "hookgate-vector-secret-3f9c2a";
const WRONG = "hookgate-vector-secret-3f9c2b";
const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WRONG_WHSEC = "whsec_bm90IHRoZSBzZWNyZXQgeW91IGFyZSBsb29raW5nIGZvcg==";
const SCRIPT = "scripts/vectors/hmac_vectors.mjs";

function manifest(pkg) {
  return JSON.parse(readFileSync(join(MODULES, pkg, "package.json"), "utf8"));
}

function versionOf(pkg) {
  return manifest(pkg).version;
}

/** Imports an ESM-only package (or one of its exported subpaths) from MODULES. */
function importPkg(pkg, sub = ".") {
  let entry = manifest(pkg).exports[sub];
  while (typeof entry === "object") entry = entry.import ?? entry.default ?? entry.node;
  return import(pathToFileURL(join(MODULES, pkg, entry)).href);
}

function bodyFor(preset, extra = {}) {
  return JSON.stringify({ id: `evt_${preset}_1`, type: "test.event", note: "café ✓", ...extra });
}

function write(preset, doc, generatedBy, file = preset.replace(/-/g, "_"), evidence = "sdk") {
  const full = {
    provider: preset,
    ...doc,
    evidence,
    generated_by: `${generatedBy} (${SCRIPT})`,
    now: doc.now ?? TIMESTAMP + 30,
  };
  const path = join(OUT, `${file}.json`);
  writeFileSync(path, JSON.stringify(full, null, 2) + "\n");
  console.log("wrote", relative(process.cwd(), path));
}

function assert(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** Runs `f` with Date.now() reading `ms`. */
async function at(ms, f) {
  const real = Date.now;
  Date.now = () => ms;
  try {
    return await f();
  } finally {
    Date.now = real;
  }
}

async function github() {
  const { sign, verify } = await importPkg("@octokit/webhooks-methods");
  const body = bodyFor("github");
  const sig = await sign(SECRET, body);
  assert(await verify(SECRET, body, sig), "github verify");
  assert(!(await verify(WRONG, body, sig)), "github wrong secret");
  write("github", {
    source: `@octokit/webhooks-methods ${versionOf("@octokit/webhooks-methods")}`,
    kind: "hmac-sha256", secret: SECRET, wrong_secret: WRONG,
    headers: { "X-Hub-Signature-256": sig, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Event": "push" },
    body,
  }, "@octokit/webhooks-methods sign, checked with verify");
}

// The worked example of https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
// (secret "It's a Secret to Everybody", payload "Hello, World!"), checked with the SDK.
async function githubDocExample() {
  const { verify } = await importPkg("@octokit/webhooks-methods");
  const secret = "It's a Secret to Everybody";
  const body = "Hello, World!";
  const published = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  assert(await verify(secret, body, published), "github doc example");
  write("github", {
    source: `GitHub docs; checked with @octokit/webhooks-methods ${versionOf("@octokit/webhooks-methods")} verify`,
    kind: "hmac-sha256", secret, wrong_secret: "It's a Secret to Nobody",
    headers: { "X-Hub-Signature-256": published, "X-GitHub-Delivery": "00000000-0000-0000-0000-000000000001" },
    body,
  }, "the published example of https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries", "github_docs", "doc-example");
}

async function linear() {
  const { LinearWebhookClient } = await importPkg("@linear/sdk", "./webhooks");
  const ms = TIMESTAMP * 1000;
  const body = JSON.stringify({ action: "create", type: "Issue", data: { id: "iss_1", title: "café ✓" }, webhookTimestamp: ms });
  const sig = createHmac("sha256", SECRET).update(body).digest("hex");
  await at(ms + 30_000, () => {
    assert(new LinearWebhookClient(SECRET).verify(Buffer.from(body), sig), "linear verify");
    let refused = false;
    try { refused = !new LinearWebhookClient(WRONG).verify(Buffer.from(body), sig); } catch { refused = true; }
    assert(refused, "linear wrong secret");
  });
  write("linear", {
    source: `@linear/sdk ${versionOf("@linear/sdk")}`,
    kind: "hmac-sha256", secret: SECRET, wrong_secret: WRONG,
    headers: { "Linear-Signature": sig, "Linear-Delivery": "234d1a4e-b617-4388-90fe-adc3633d6b72", "Linear-Event": "Issue" },
    body,
  }, "documented formula, accepted by @linear/sdk LinearWebhookClient.verify");
}

async function webflow() {
  const { WebflowClient } = require("webflow-api");
  const ms = String(TIMESTAMP * 1000);
  const body = JSON.stringify({ triggerType: "form_submission", payload: { name: "café ✓", id: "wf_1" } });
  const sig = createHmac("sha256", SECRET).update(`${ms}:${body}`).digest("hex");
  const headers = { "x-webflow-timestamp": ms, "x-webflow-signature": sig };
  const client = new WebflowClient({ accessToken: "unused" });
  assert(await client.webhooks.verifySignature({ headers, body, secret: SECRET }), "webflow verify");
  assert(!(await client.webhooks.verifySignature({ headers, body, secret: WRONG })), "webflow wrong");
  write("webflow", {
    source: `webflow-api ${versionOf("webflow-api")}`,
    kind: "hmac-sha256", secret: SECRET, wrong_secret: WRONG, headers, body,
  }, "documented formula, accepted by webflow-api webhooks.verifySignature");
}

async function zoom() {
  const { AwsLambdaReceiver } = require("@zoom/rivet/users");
  const ts = String(TIMESTAMP);
  // Rivet verifies JSON.stringify(JSON.parse(body)), so the body is compact JSON.
  const body = JSON.stringify({ event: "user.updated", event_ts: TIMESTAMP * 1000, payload: { account_id: "acc_1", object: { id: "u_1", first_name: "café ✓" } } });
  const sig = "v0=" + createHmac("sha256", SECRET).update(`v0:${ts}:${body}`).digest("hex");
  const headers = { "x-zm-request-timestamp": ts, "x-zm-signature": sig };
  const answer = async (secret) => {
    const receiver = new AwsLambdaReceiver({ webhooksSecretToken: secret });
    const quiet = console.debug;
    console.debug = () => {};
    try {
      return (await receiver.start()({ body, headers }, {})).statusCode;
    } finally {
      console.debug = quiet;
    }
  };
  assert((await answer(SECRET)) === 200, "zoom verify");
  assert((await answer(WRONG)) === 400, "zoom wrong secret");
  write("zoom", {
    source: `@zoom/rivet ${versionOf("@zoom/rivet")}`,
    kind: "hmac-sha256", secret: SECRET, wrong_secret: WRONG, headers, body,
  }, "documented formula, accepted by @zoom/rivet's receiver (CommonHttpRequest.isEventVerified)");
}

async function resend() {
  const { Resend } = require("resend");
  const { Webhook } = require("standardwebhooks");
  const body = bodyFor("resend", { type: "email.sent" });
  const id = "msg_resend0001";
  const sig = new Webhook(WHSEC).sign(id, new Date(TIMESTAMP * 1000), body);
  const client = new Resend("re_unused");
  const check = (secret) => at(TIMESTAMP * 1000 + 30_000, () => client.webhooks.verify({
    payload: body, headers: { id, timestamp: String(TIMESTAMP), signature: sig }, webhookSecret: secret,
  }));
  await check(WHSEC);
  let refused = false;
  try { await check(WRONG_WHSEC); } catch { refused = true; }
  assert(refused, "resend wrong secret");
  write("resend", {
    source: `resend ${versionOf("resend")} (standardwebhooks ${versionOf("standardwebhooks")})`,
    kind: "hmac-sha256", secret: WHSEC, wrong_secret: WRONG_WHSEC,
    headers: { "svix-id": id, "svix-timestamp": String(TIMESTAMP), "svix-signature": sig },
    body,
  }, "standardwebhooks Webhook.sign (the library resend verifies with), checked with resend webhooks.verify");
}

async function shopify() {
  require("@shopify/shopify-api/adapters/node");
  const { shopifyApi, ApiVersion } = require("@shopify/shopify-api");
  const body = bodyFor("shopify", { admin_graphql_api_id: "gid://shopify/Order/1" });
  const sig = createHmac("sha256", SECRET).update(body, "utf8").digest("base64");
  const headers = {
    "X-Shopify-Hmac-Sha256": sig,
    "X-Shopify-Topic": "orders/create",
    "X-Shopify-Api-Version": "2025-01",
    "X-Shopify-Shop-Domain": "example.myshopify.com",
    "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    "X-Shopify-Triggered-At": "2026-01-01T00:00:00.000Z",
  };
  const validate = (secret) => shopifyApi({
    apiKey: "key", apiSecretKey: secret, apiVersion: ApiVersion.January25, hostName: "hooks.example.com",
    isEmbeddedApp: false, logger: { level: 0, log: () => {} },
  }).webhooks.validate({
    rawBody: body,
    rawRequest: { method: "POST", url: "/hooks/shopify", headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])) },
    rawResponse: {},
  });
  assert((await validate(SECRET)).valid, "shopify validate");
  assert(!(await validate(WRONG)).valid, "shopify wrong secret");
  write("shopify", {
    source: `@shopify/shopify-api ${versionOf("@shopify/shopify-api")}`,
    kind: "hmac-sha256", secret: SECRET, wrong_secret: WRONG, headers, body,
  }, "documented formula, accepted by @shopify/shopify-api webhooks.validate");
}

async function notion() {
  const { signWebhookPayload, verifyWebhookSignature } = require("@notionhq/client");
  const body = JSON.stringify({ id: "evt_notion_1", timestamp: "2026-01-01T00:00:00.000Z", type: "page.created", entity: { id: "pg_1", type: "page" }, note: "café ✓" });
  const sig = await signWebhookPayload({ body, verificationToken: SECRET });
  assert(await verifyWebhookSignature({ body, signature: sig, verificationToken: SECRET }), "notion verify");
  assert(!(await verifyWebhookSignature({ body, signature: sig, verificationToken: WRONG })), "notion wrong");
  write("notion", {
    source: `@notionhq/client ${versionOf("@notionhq/client")}`,
    kind: "hmac-sha256", secret: SECRET, wrong_secret: WRONG,
    headers: { "X-Notion-Signature": sig }, body,
  }, "@notionhq/client signWebhookPayload, checked with verifyWebhookSignature");
}

for (const f of [github, githubDocExample, linear, webflow, zoom, resend, shopify, notion]) {
  await f();
}
