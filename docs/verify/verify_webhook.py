"""Verifies a webhookd delivery signed with the Standard Webhooks scheme.

Python 3.9+, standard library only. Usage in a Flask app (the raw body is
needed: the signature covers the exact bytes sent; docs/partner-guide.md has
the complete endpoint):

    import os
    from flask import Flask, jsonify, request

    @app.route('/webhooks/prizes', methods=['POST'])
    def webhook_handler():
        if not verify_webhook(os.environ['WEBHOOK_SECRET'], request.headers, request.get_data()):
            return jsonify({"error": "Invalid signature"}), 401
        payload = request.get_json()
        # Process webhook... (deduplicate on request.headers['webhook-id'])
        return jsonify({"received": True}), 200
"""
import base64
import hashlib
import hmac
import time


def verify_webhook(secret, headers, raw_body, tolerance_seconds=300, now=None):
    msg_id = headers.get('webhook-id')
    timestamp = headers.get('webhook-timestamp')
    signatures = headers.get('webhook-signature')
    if not msg_id or not timestamp or not signatures:
        return False
    # Reject old (replayed) and future timestamps.
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    now = int(time.time()) if now is None else now
    if abs(now - ts) > tolerance_seconds:
        return False
    key = base64.b64decode(secret.removeprefix('whsec_'))
    signed = msg_id.encode() + b'.' + timestamp.encode() + b'.' + raw_body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # During a secret rotation there are two signatures: accept either.
    for candidate in signatures.split(' '):
        version, _, sig = candidate.partition(',')
        if version == 'v1' and hmac.compare_digest(sig, expected):
            return True
    return False


if __name__ == '__main__':
    # Self-check for webhookd's tests: JSON {secret, headers, body_b64, now} on stdin.
    import json
    import sys
    c = json.load(sys.stdin)
    ok = verify_webhook(c['secret'], c['headers'], base64.b64decode(c['body_b64']), 300, c['now'])
    print('valid' if ok else 'invalid')
