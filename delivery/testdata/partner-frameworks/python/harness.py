"""Runs the partner guide's Flask endpoint (argv[1]) on requests read as JSON
from stdin: [{"headers": {...}, "body_b64": "..."}, ...]. Prints one line
"status <code>" per request; the endpoint prints what it processes."""
import base64
import json
import runpy
import sys

import flask

snippet = runpy.run_path(sys.argv[1], run_name='partner_endpoint')
handler = flask.routes['/webhooks/prizes']
for r in json.load(sys.stdin):
    flask.request.headers = flask._Headers(r['headers'])
    flask.request.data = base64.b64decode(r['body_b64'])
    answer = handler()
    status = answer[1] if isinstance(answer, tuple) else 200
    print(f'status {status}', flush=True)
