// Runs the partner guide's Express endpoint (argv[2]) on requests read as
// JSON from stdin: [{"headers": {...}, "body_b64": "..."}, ...]. Prints one
// line "status <code>" per request; the endpoint logs what it processes.
const path = require("path");
const express = require("express");

require(path.resolve(process.argv[2]));
const handlers = express.routes["/webhooks/prizes"];

// run calls the route's middlewares and handler in order, each going on
// only when the previous one calls next().
function run(req, res, i = 0) {
  if (i < handlers.length) handlers[i](req, res, () => run(req, res, i + 1));
}

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  for (const r of JSON.parse(input)) {
    const headers = {};
    for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
    let status = 200;
    const res = {
      status(code) {
        status = code;
        return this;
      },
      json() {
        return this;
      },
    };
    run({ headers, body: Buffer.from(r.body_b64, "base64") }, res);
    console.log(`status ${status}`);
  }
});
