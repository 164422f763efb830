// The child side of a JavaScript code node; sandbox.py runs it as `node -e <this file> FD`.
// It reads {"code", "items", "n8n"} as JSON on stdin, runs the code as the body of an async
// function of `items`, and writes {"items": ...} or {"error": {"type", "message", "line"}} as
// JSON to file descriptor FD, so console.log stays free for the code's prints (the node's log).
// With "n8n" the code is n8n Code or Function node code: `items` and `$input.all()`, `first()`,
// `last()` are n8n items {json: ...}, and it may return such items, plain objects or one object.
// A custom node of the NODE runtime sends {"module", "items", "config", "context"} instead:
// `module` is CommonJS source whose `module.exports` is a function (items, config, context),
// plain or async, given `require` for Node's built-in modules; its result is the items.
"use strict";
const fs = require("fs");

const channel = Number(process.argv[1]);
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const HEADER_LINES = 2; // "async function anonymous(items\n) {\n" precedes the code
// n8n code runs inside a function of its own, so that it may declare `items` or `$input`:
// "function anonymous(items,$input\n) {\nreturn async function () {\n" precedes it.
const N8N_HEADER_LINES = 3;
// "function anonymous(module,exports,require\n) {\n" precedes a module's source
const MODULE_HEADER_LINES = 2;
let headerLines = HEADER_LINES;
const N8N_ITEM_KEYS = new Set(["json", "binary", "pairedItem"]);

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// What n8n code returned as A2N's items: {json: ...} unwrapped, one object as a list of it.
function fromN8n(result) {
  const list = isObject(result) ? [result] : result;
  if (!Array.isArray(list)) return list;
  const wrapped = (item) =>
    isObject(item) && isObject(item.json) && Object.keys(item).every((k) => N8N_ITEM_KEYS.has(k));
  return list.map((item) => (wrapped(item) ? item.json : item));
}

async function runModule(payload) {
  const module = { exports: {} };
  new Function("module", "exports", "require", payload.module)(module, module.exports, require);
  if (typeof module.exports !== "function") {
    throw new TypeError(
      "the module must export a function: module.exports = async (items, config, context) => items",
    );
  }
  return module.exports(payload.items, payload.config, payload.context);
}

async function run(payload) {
  if (typeof payload.module === "string") {
    headerLines = MODULE_HEADER_LINES;
    return runModule(payload);
  }
  if (payload.n8n !== true) return new AsyncFunction("items", payload.code)(payload.items);
  headerLines = N8N_HEADER_LINES;
  const items = payload.items.map((json) => ({ json }));
  const $input = {
    all: () => items,
    first: () => items[0],
    last: () => items[items.length - 1],
  };
  const body = "return async function () {\n" + payload.code + "\n};";
  return fromN8n(await new Function("items", "$input", body)(items, $input)());
}

function describe(error) {
  if (!(error instanceof Error)) return { type: "Error", message: String(error), line: null };
  const match = /<anonymous>:(\d+):\d+/.exec(error.stack || "");
  const line = match ? Number(match[1]) - headerLines : null;
  return { type: error.name, message: error.message, line };
}

async function main() {
  let answer;
  try {
    const payload = JSON.parse(fs.readFileSync(0, "utf8"));
    answer = JSON.stringify({ items: await run(payload) });
  } catch (error) {
    answer = JSON.stringify({ error: describe(error) });
  }
  const bytes = Buffer.from(answer, "utf8");
  for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(channel, bytes, offset);
  process.exit(0); // timers the code left running must not hold the run open
}

main();
