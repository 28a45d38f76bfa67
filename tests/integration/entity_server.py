#!/usr/bin/env python3
"""A source service's API for the thin-event tests: GET /entities/KEY answers the entity from a JSON file, and fails
on purpose as a control file says. Prints "listening PORT" once it accepts connections; stopped by its PID.

Usage: entity_server.py ENTITIES_JSON CONTROL_JSON
  ENTITIES_JSON  {"KEY": entity, ...}: a key not in it is 404
  CONTROL_JSON   {"fail": N, "status": S, "always": [KEY, ...]}: the next N requests answer S (503 by default);
                 requests for a key in "always" answer S every time. Read on every request; "fail" is counted down.
Every request is appended to CONTROL_JSON.log as "KEY STATUS"."""
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

entities_path, control_path = sys.argv[1], sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        prefix = "/entities/"
        key = urllib.parse.unquote(self.path[len(prefix):]) if self.path.startswith(prefix) else None
        try:
            control = json.load(open(control_path))
        except (OSError, ValueError):
            control = {}
        status = control.get("status", 503)
        if key is None:
            code, body = 400, '{"error":"no such path"}'
        elif control.get("fail", 0) > 0 or key in control.get("always", []):
            if control.get("fail", 0) > 0:
                control["fail"] -= 1
                json.dump(control, open(control_path, "w"))
            code, body = status, '{"error":"failing on purpose"}'
        else:
            entities = json.load(open(entities_path))
            if key in entities:
                code, body = 200, json.dumps(entities[key])
            else:
                code, body = 404, '{"error":"no such entity"}'
        with open(control_path + ".log", "a") as log:
            log.write("%s %d\n" % (key, code))
        self.answer(code, body)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening %d" % server.server_address[1], flush=True)
server.serve_forever()
