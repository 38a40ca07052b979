#!/usr/bin/env python3
"""A real HTTP server process for tessera's tests (standard library only).

It plays web-hook targets and a breached-password range API:

  * any method on /hook/ok         -> records the request, answers 200 {}
  * any method on /hook/interrupt  -> records, answers 400 with Kratos' web-hook message body
  * any method on /hook/parse      -> records, answers 200 {"identity": {...}} changing the traits
  * any method on /hook/fail       -> records, answers 500
  * POST /migrate                  -> a password-migration hook: passwords starting "legacy-"
                                      match (200 {"status":"password_match"}), "weird-" answer
                                      200 {"status":"maybe"}, "fail-" 500, anything else 403
  * GET /requests                  -> the recorded requests as a JSON array
  * Ory Hydra's admin API for login challenges (every request recorded):
      GET /admin/oauth2/auth/requests/login?login_challenge=C        -> the login request;
          C starting "skip-": skip true; "unknown-": 404 with an OAuth2 error (error_hint);
          "gone-": 410 {redirect_to}; "down-": 501
      PUT /admin/oauth2/auth/requests/login/accept?login_challenge=C -> {redirect_to}
          (C starting "noaccept-": 409 with an OAuth2 error)
  * GET /range/<5 hex>             -> k-anonymity range API: SHA-1 suffixes with counts;
                                      the password "breached-password-1" appears 42 times

Prints "PORT <n>" on stdout once it listens on 127.0.0.1 (port chosen by the OS), then
serves until it is killed.
"""

import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BREACHED = hashlib.sha1(b"breached-password-1").hexdigest().upper()
RECORDED = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        entry = {
            "path": self.path,
            "method": self.command,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        with LOCK:
            RECORDED.append(entry)
        return entry

    def _hook(self):
        entry = self._record()
        if self.path.startswith("/hook/ok"):
            return self._send(200, "{}")
        if self.path.startswith("/hook/interrupt"):
            return self._send(400, json.dumps({
                "messages": [{
                    "instance_ptr": "#/traits/email",
                    "messages": [{"id": 4000001, "text": "blocked by the hook", "type": "error",
                                  "context": {"reason": "blocked"}}],
                }]
            }))
        if self.path.startswith("/hook/parse"):
            body = entry["body"] if isinstance(entry["body"], dict) else {}
            traits = dict(body.get("traits") or {})
            traits["name"] = {"first": "Hooked"}
            return self._send(200, json.dumps({"identity": {"traits": traits, "metadata_public": {"hooked": True}}}))
        if self.path.startswith("/hook/fail"):
            return self._send(500, "{}")
        if self.path.startswith("/migrate"):
            body = entry["body"] if isinstance(entry["body"], dict) else {}
            password = body.get("password") or body.get("pw") or ""
            if password.startswith("legacy-"):
                return self._send(200, json.dumps({"status": "password_match"}))
            if password.startswith("weird-"):
                return self._send(200, json.dumps({"status": "maybe"}))
            if password.startswith("fail-"):
                return self._send(500, "{}")
            return self._send(403, "{}")
        return self._send(404, "{}")

    def _hydra(self):
        entry = self._record()
        query = parse_qs(urlparse(self.path).query)
        challenge = (query.get("login_challenge") or [""])[0]
        oauth2_error = lambda status, hint: self._send(status, json.dumps(
            {"error": "request_forbidden", "error_description": "refused", "error_hint": hint,
             "status_code": status}))
        if self.path.startswith("/admin/oauth2/auth/requests/login/accept") and self.command == "PUT":
            if challenge.startswith("noaccept-"):
                return oauth2_error(409, "The login request was handled already.")
            return self._send(200, json.dumps(
                {"redirect_to": "http://hydra.test/oauth2/auth?login_verifier=verifier-" + challenge}))
        if self.command != "GET":
            return self._send(405, "{}")
        if challenge.startswith("unknown-"):
            return oauth2_error(404, "Unknown login challenge.")
        if challenge.startswith("gone-"):
            return self._send(410, json.dumps({"redirect_to": "http://hydra.test/gone"}))
        if challenge.startswith("down-"):
            return self._send(501, "{}")
        return self._send(200, json.dumps({
            "challenge": challenge,
            "skip": challenge.startswith("skip-"),
            "subject": "",
            "request_url": "http://hydra.test/oauth2/auth?client_id=app&response_type=code&state=s-" + challenge,
            "client": {"client_id": "app", "client_name": "Test App"},
            "requested_scope": ["openid"],
            "requested_access_token_audience": [],
            "session_id": None,
        }))

    def do_GET(self):
        if self.path.startswith("/admin/oauth2/"):
            return self._hydra()
        if self.path == "/requests":
            with LOCK:
                return self._send(200, json.dumps(RECORDED))
        if self.path.startswith("/range/"):
            prefix = self.path[len("/range/"):].upper()
            lines = [f"{i:035X}:{i}" for i in range(1, 4)]
            if BREACHED.startswith(prefix):
                lines.append(f"{BREACHED[5:]}:42")
            return self._send(200, "\r\n".join(lines), "text/plain")
        return self._hook()

    def do_PUT(self):
        if self.path.startswith("/admin/oauth2/"):
            return self._hydra()
        return self._hook()

    do_POST = _hook
    do_PATCH = _hook
    do_DELETE = _hook


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
