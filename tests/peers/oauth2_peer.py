#!/usr/bin/env python3
"""An OAuth2-only provider in GitHub's style for tessera's tests (standard library only).

  * GET  /login/oauth/authorize   -> 302 to redirect_uri with a code and the state; the user
                                     is the `login_hint` parameter, else "octo@example.org"
  * POST /login/oauth/access_token -> exchanges the code (client id/secret by HTTP Basic or
                                     in the form) for a bearer token, JSON when asked for
  * GET  /user                    -> the token's user: {id, login, name, email: null, ...}
  * GET  /user/emails             -> [{email, primary: true, verified: true}]
  * GET  /requests                -> what was asked of it (paths and headers) as JSON

Prints "PORT <n>" once it listens on 127.0.0.1 (port chosen by the OS).
"""

import base64
import hashlib
import json
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_ID = "octo-client"
CLIENT_SECRET = "octo-client-secret"
CODES = {}
TOKENS = {}
RECORDED = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        with LOCK:
            RECORDED.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})

    def user(self):
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith(("bearer ", "token ")):
            return None
        return TOKENS.get(auth.split(" ", 1)[1])

    def do_GET(self):
        self.record()
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/login/oauth/authorize":
            if q.get("client_id") != CLIENT_ID:
                return self.answer(400, {"error": "unknown client"})
            account = q.get("login_hint") or "octo@example.org"
            code = secrets.token_hex(16)
            with LOCK:
                CODES[code] = {"account": account, "redirect_uri": q.get("redirect_uri"),
                               "challenge": q.get("code_challenge")}
            sep = "&" if "?" in q["redirect_uri"] else "?"
            to = q["redirect_uri"] + sep + urllib.parse.urlencode({"code": code, "state": q.get("state", "")})
            return self.answer(302, b"", "text/plain", [("Location", to)])
        if url.path == "/user":
            account = self.user()
            if account is None:
                return self.answer(401, {"message": "Bad credentials"})
            uid = int(hashlib.sha256(account.encode()).hexdigest()[:8], 16)
            return self.answer(200, {"id": uid, "login": account.split("@")[0], "name": "Octo " + account.split("@")[0],
                                     "email": None, "avatar_url": "https://example.org/a.png",
                                     "html_url": "https://example.org/" + account.split("@")[0], "blog": ""})
        if url.path == "/user/emails":
            account = self.user()
            if account is None:
                return self.answer(401, {"message": "Bad credentials"})
            return self.answer(200, [{"email": "other@example.org", "primary": False, "verified": False},
                                     {"email": account, "primary": True, "verified": True}])
        if url.path == "/requests":
            with LOCK:
                return self.answer(200, RECORDED)
        return self.answer(404, {"message": "Not Found"})

    def do_POST(self):
        self.record()
        url = urllib.parse.urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        if url.path != "/login/oauth/access_token":
            return self.answer(404, {"message": "Not Found"})
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            raw = base64.b64decode(auth.split(" ", 1)[1]).decode()
            client_id, client_secret = [urllib.parse.unquote_plus(p) for p in raw.split(":", 1)]
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            return self.answer(401, {"error": "invalid_client"})
        with LOCK:
            grant = CODES.pop(form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return self.answer(400, {"error": "bad_verification_code"})
        if grant["challenge"]:
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if digest != grant["challenge"]:
                return self.answer(400, {"error": "invalid_grant"})
        token = secrets.token_hex(20)
        with LOCK:
            TOKENS[token] = grant["account"]
        return self.answer(200, {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
