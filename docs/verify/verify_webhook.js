// Verifies a webhookd delivery signed with the Standard Webhooks scheme.
// Node.js, no dependencies. Usage in an Express app (the raw body is needed:
// the signature covers the exact bytes sent):
//
//   app.post("/webhooks/prizes", express.raw({ type: "application/json" }), (req, res) => {
//     if (!verifyWebhook(process.env.WEBHOOK_SECRET, req.headers, req.body)) {
//       return res.status(401).json({ error: "Invalid signature" });
//     }
//     const payload = JSON.parse(req.body);
//     // Process webhook... (deduplicate on req.headers["webhook-id"])
//     res.status(200).json({ received: true });
//   });
const crypto = require("crypto");

function verifyWebhook(secret, headers, rawBody, toleranceSeconds = 300, nowSeconds = Math.floor(Date.now() / 1000)) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) return false;
  // Reject old (replayed) and future timestamps.
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowSeconds - ts) > toleranceSeconds) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(rawBody)
    .digest();
  // During a secret rotation there are two signatures: accept either.
  return signatures.split(" ").some((s) => {
    const [version, sig] = s.split(",");
    if (version !== "v1" || !sig) return false;
    const given = Buffer.from(sig, "base64");
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

module.exports = { verifyWebhook };

// Self-check for webhookd's tests: JSON {secret, headers, body_b64, now} on stdin.
if (require.main === module) {
  let input = "";
  process.stdin.on("data", (d) => (input += d));
  process.stdin.on("end", () => {
    const c = JSON.parse(input);
    const ok = verifyWebhook(c.secret, c.headers, Buffer.from(c.body_b64, "base64"), 300, c.now);
    process.stdout.write(ok ? "valid\n" : "invalid\n");
  });
}
