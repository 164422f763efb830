// The child side of a JavaScript code node; sandbox.py runs it as `node -e <this file> FD`.
// It reads {"code", "items"} as JSON on stdin, runs the code as the body of an async function
// of `items`, and writes {"items": ...} or {"error": {"type", "message", "line"}} as JSON to
// file descriptor FD, so console.log stays free for the code's prints (the node's log).
"use strict";
const fs = require("fs");

const channel = Number(process.argv[1]);
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const HEADER_LINES = 2; // "async function anonymous(items\n) {\n" precedes the code

function describe(error) {
  if (!(error instanceof Error)) return { type: "Error", message: String(error), line: null };
  const match = /<anonymous>:(\d+):\d+/.exec(error.stack || "");
  const line = match ? Number(match[1]) - HEADER_LINES : null;
  return { type: error.name, message: error.message, line };
}

async function main() {
  let answer;
  try {
    const payload = JSON.parse(fs.readFileSync(0, "utf8"));
    const run = new AsyncFunction("items", payload.code);
    answer = JSON.stringify({ items: await run(payload.items) });
  } catch (error) {
    answer = JSON.stringify({ error: describe(error) });
  }
  const bytes = Buffer.from(answer, "utf8");
  for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(channel, bytes, offset);
  process.exit(0); // timers the code left running must not hold the run open
}

main();
