#!/usr/bin/env python3
"""A fake OAuth 2.0 authorization server on 127.0.0.1, for the tests of
contrib/mailfetch-oauth2 and of XOAUTH2/OAUTHBEARER against Dovecot's oauth2
passdb.  Standard library only; http.server in a thread.

    srv = FakeOAuth(client_id="mailfetch-test").start()
    tok = srv.issue("alice", lifetime=30)     # an access token for alice
    ... Dovecot: introspection_url = srv.introspect_url, introspection_mode = post
    srv.expire(tok)                           # now inactive
    srv.calls["introspect"]                   # requests seen per endpoint
    srv.stop()

Endpoints (URLs as attributes; srv.url is the base, http://127.0.0.1:PORT):
  authorize_url   GET  /authorize  response_type=code, client_id (known),
                       redirect_uri (http on loopback only, else a 400 page),
                       state, PKCE code_challenge with method S256 (required).
                       authorize_mode "approve" (default): 302 straight to
                       redirect_uri?code=..&state=.. for authorize_user (a test
                       fetches the URL itself to play the browser); "deny":
                       302 with error=access_denied.
  token_url       POST /token  client_id (body or Basic; client_secret checked
                       when one is set).  Grants: authorization_code (single use,
                       60 s, redirect_uri and code_verifier checked), refresh_token
                       (rotated when rotate_refresh, the old one then revoked),
                       urn:ietf:params:oauth:grant-type:device_code (RFC 8628:
                       authorization_pending until approve_device(), slow_down
                       while slow_down_next > 0, access_denied, expired_token).
                       Replies: access_token, token_type Bearer, expires_in
                       (access_lifetime), refresh_token, scope; errors as RFC 6749.
  device_url      POST /device_authorization  client_id, scope -> device_code,
                       user_code, verification_uri(_complete), expires_in
                       (device_lifetime), interval (device_interval).
  introspect_url  RFC 7662 token introspection: POST token=..., or GET with the
                       token in the query (token= or access_token=), at the end
                       of the path (/introspect/TOKEN), or as Authorization:
                       Bearer.  Active access token: 200 {"active": true,
                       "username": USER, "email": USER, "sub": USER, "scope",
                       "client_id", "token_type", "exp", "iat", "expires_in"};
                       else {"active": false} with HTTP inactive_status (200).
  revoke_url      POST /revoke  RFC 7009 token=...: revoked; always 200.

Test controls (attributes, may be changed at any time):
  access_lifetime (3600), refresh_lifetime (None: forever), rotate_refresh (True),
  authorize_mode ("approve" | "deny"), authorize_user ("alice"),
  device_interval (1), device_lifetime (600), device_auto_approve (None, or
  N: approve for authorize_user after N pending polls), slow_down_next (0),
  inactive_status (200), introspect_extra ({} merged into active replies).

Methods:
  issue(user, lifetime=None, scope=None) -> access token (lifetime seconds, or
      access_lifetime); issue_refresh(user) -> refresh token
  expire(token), revoke(token), active(token) -> bool, user_of(token)
  approve_device(user_code=None, user=None), deny_device(user_code=None),
      expire_device(user_code=None) (None: the latest device code)
  pending_devices() -> [user_code]; wait_calls(endpoint, n, timeout)
  secrets() -> every token, code and device code issued (for leak checks)
  tokens(kind=None, user=None, active=None) -> [Token] with .value, .kind
      ("access" | "refresh"), .user, .expires_at, .revoked
Records: calls (Counter per endpoint: authorize, token, device, introspect,
  revoke, other), grants (Counter per grant_type), history ([(endpoint, params)]),
  too_fast (device polls sooner than the interval), errors ([str]: requests
  refused, with why).

Standalone:  python3 tests/lib/fakeoauth.py [--port N] [--client-id ID]
prints the endpoints, approves every sign-in (device codes after one poll)
and runs until interrupted.
"""

import base64
import collections
import hashlib
import http.server
import ipaddress
import json
import secrets
import threading
import time
import urllib.parse

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class Token:
    def __init__(self, value, kind, user, client_id, scope, expires_at):
        self.value = value
        self.kind = kind
        self.user = user
        self.client_id = client_id
        self.scope = scope
        self.expires_at = expires_at  # time.time() seconds, None = never
        self.revoked = False
        self.issued_at = time.time()

    def is_active(self, now=None):
        now = time.time() if now is None else now
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def __repr__(self):
        return "Token(%s %s for %s, %s)" % (self.kind, self.value[:8] + "...", self.user,
                                           "active" if self.is_active() else "inactive")


class _Device:
    def __init__(self, device_code, user_code, client_id, scope, expires_at):
        self.device_code = device_code
        self.user_code = user_code
        self.client_id = client_id
        self.scope = scope
        self.expires_at = expires_at
        self.state = "pending"  # approved, denied, done
        self.user = None
        self.last_poll = None
        self.polls = 0


def _is_loopback_http(uri):
    try:
        u = urllib.parse.urlsplit(uri)
        host = u.hostname or ""
        if u.scheme != "http":
            return False
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FakeOAuth:
    def __init__(self, client_id="mailfetch-test", client_secret=None, scope="https://mail.example/imap offline_access",
                 host="127.0.0.1", port=0, access_lifetime=3600):
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.host = host
        self.port = port
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = None
        self.rotate_refresh = True
        self.authorize_mode = "approve"
        self.authorize_user = "alice"
        self.device_interval = 1
        self.device_lifetime = 600
        self.device_auto_approve = None
        self.slow_down_next = 0
        self.inactive_status = 200
        self.introspect_extra = {}
        self.calls = collections.Counter()
        self.grants = collections.Counter()
        self.history = []
        self.errors = []
        self.too_fast = 0
        self._tokens = {}
        self._codes = {}
        self._devices = []
        self._issued = []
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    # -- life cycle ---------------------------------------------------------

    def start(self):
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._httpd = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = "http://%s:%d" % (self.host, self.port)
        self.authorize_url = self.url + "/authorize"
        self.token_url = self.url + "/token"
        self.device_url = self.url + "/device_authorization"
        self.introspect_url = self.url + "/introspect"
        self.revoke_url = self.url + "/revoke"
        self.verification_uri = self.url + "/device"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fakeoauth", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n=40):
        with self._lock:
            lines = ["%s %s" % (ep, json.dumps(p, sort_keys=True)) for ep, p in self.history[-n:]]
        return "\n".join(lines + ["error: " + e for e in self.errors[-n:]])

    # -- tokens ---------------------------------------------------------------

    def _new_token(self, kind, user, client_id, scope, lifetime):
        value = ("at-" if kind == "access" else "rt-") + secrets.token_urlsafe(24)
        exp = None if lifetime is None else time.time() + lifetime
        t = Token(value, kind, user, client_id, scope, exp)
        self._tokens[value] = t
        self._issued.append(value)
        return t

    def issue(self, user, lifetime=None, scope=None):
        """An access token for user, valid for lifetime seconds."""
        with self._lock:
            lt = self.access_lifetime if lifetime is None else lifetime
            return self._new_token("access", user, self.client_id, scope or self.scope, lt).value

    def issue_refresh(self, user, scope=None):
        with self._lock:
            return self._new_token("refresh", user, self.client_id, scope or self.scope, self.refresh_lifetime).value

    def expire(self, token):
        with self._lock:
            self._tokens[token].expires_at = time.time() - 1

    def revoke(self, token):
        with self._lock:
            if token in self._tokens:
                self._tokens[token].revoked = True

    def active(self, token):
        with self._lock:
            t = self._tokens.get(token)
            return bool(t and t.is_active())

    def user_of(self, token):
        with self._lock:
            t = self._tokens.get(token)
            return t.user if t else None

    def tokens(self, kind=None, user=None, active=None):
        with self._lock:
            out = [t for t in self._tokens.values() if (kind is None or t.kind == kind)
                   and (user is None or t.user == user) and (active is None or t.is_active() == active)]
        return sorted(out, key=lambda t: t.issued_at)

    def secrets(self):
        """Every token, code and device code issued so far."""
        with self._lock:
            return list(self._issued)

    # -- device codes ---------------------------------------------------------

    def _device(self, user_code):
        if user_code is None:
            if not self._devices:
                raise KeyError("no device code issued")
            return self._devices[-1]
        for d in self._devices:
            if d.user_code == user_code:
                return d
        raise KeyError(user_code)

    def approve_device(self, user_code=None, user=None):
        with self._lock:
            d = self._device(user_code)
            d.state = "approved"
            d.user = user or self.authorize_user

    def deny_device(self, user_code=None):
        with self._lock:
            self._device(user_code).state = "denied"

    def expire_device(self, user_code=None):
        with self._lock:
            self._device(user_code).expires_at = time.time() - 1

    def pending_devices(self):
        with self._lock:
            return [d.user_code for d in self._devices if d.state == "pending"]

    def wait_calls(self, endpoint, n, timeout=10.0):
        """Wait until calls[endpoint] >= n; True if it got there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.calls[endpoint] >= n:
                return True
            time.sleep(0.02)
        return self.calls[endpoint] >= n

    # -- request handling (called from the handler threads) -------------------

    def _client_ok(self, params, basic):
        cid, csec = params.get("client_id"), params.get("client_secret")
        if basic:
            cid, csec = basic
        if cid != self.client_id:
            return False
        return self.client_secret is None or csec == self.client_secret

    def _token_reply(self, user, client_id, scope, with_refresh=True):
        at = self._new_token("access", user, client_id, scope, self.access_lifetime)
        reply = {"access_token": at.value, "token_type": "Bearer", "expires_in": self.access_lifetime,
                 "scope": scope}
        if with_refresh:
            reply["refresh_token"] = self._new_token("refresh", user, client_id, scope, self.refresh_lifetime).value
        return 200, reply

    def _refuse(self, why, status, error, desc=None):
        self.errors.append(why)
        body = {"error": error}
        if desc:
            body["error_description"] = desc
        return status, body

    def handle_authorize(self, q):
        """(status, headers, body text)."""
        with self._lock:
            self.calls["authorize"] += 1
            self.history.append(("authorize", dict(q)))
            if q.get("client_id") != self.client_id:
                self.errors.append("authorize: unknown client_id %r" % q.get("client_id"))
                return 400, {}, "unknown client_id"
            ruri = q.get("redirect_uri", "")
            if not _is_loopback_http(ruri):
                self.errors.append("authorize: redirect_uri not http on loopback: %r" % ruri)
                return 400, {}, "redirect_uri must be http on loopback"
            sep = "&" if "?" in ruri else "?"

            def back(params):
                if "state" in q:
                    params["state"] = q["state"]
                return 302, {"Location": ruri + sep + urllib.parse.urlencode(params)}, ""

            if q.get("response_type") != "code":
                self.errors.append("authorize: response_type %r" % q.get("response_type"))
                return back({"error": "unsupported_response_type"})
            ch = q.get("code_challenge", "")
            if q.get("code_challenge_method") != "S256" or not (43 <= len(ch) <= 128):
                self.errors.append("authorize: no PKCE S256 challenge")
                return back({"error": "invalid_request", "error_description": "PKCE S256 required"})
            if self.authorize_mode == "deny":
                return back({"error": "access_denied", "error_description": "The user said no"})
            code = "code-" + secrets.token_urlsafe(18)
            self._issued.append(code)
            self._codes[code] = {"client_id": q["client_id"], "redirect_uri": ruri, "challenge": ch,
                                 "scope": q.get("scope") or self.scope, "user": self.authorize_user,
                                 "expires_at": time.time() + 60}
            return back({"code": code})

    def handle_token(self, p, basic):
        with self._lock:
            self.calls["token"] += 1
            gt = p.get("grant_type", "")
            self.grants[gt] += 1
            self.history.append(("token", dict(p)))
            if not self._client_ok(p, basic):
                return self._refuse("token: client authentication failed", 401, "invalid_client")
            if gt == "authorization_code":
                c = self._codes.pop(p.get("code", ""), None)  # single use
                if c is None or time.time() > c["expires_at"]:
                    return self._refuse("token: unknown, used or expired code", 400, "invalid_grant", "bad code")
                if p.get("redirect_uri") != c["redirect_uri"]:
                    return self._refuse("token: redirect_uri differs", 400, "invalid_grant", "redirect_uri mismatch")
                v = p.get("code_verifier", "")
                calc = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()
                if not secrets.compare_digest(calc, c["challenge"]):
                    return self._refuse("token: PKCE verifier does not match", 400, "invalid_grant",
                                        "code_verifier mismatch")
                return self._token_reply(c["user"], c["client_id"], c["scope"])
            if gt == "refresh_token":
                t = self._tokens.get(p.get("refresh_token", ""))
                if t is None or t.kind != "refresh" or not t.is_active():
                    return self._refuse("token: refresh token unknown, revoked or expired", 400, "invalid_grant",
                                        "The refresh token is no longer valid")
                scope = p.get("scope") or t.scope
                if self.rotate_refresh:
                    t.revoked = True
                    return self._token_reply(t.user, t.client_id, scope)
                return self._token_reply(t.user, t.client_id, scope, with_refresh=False)
            if gt == DEVICE_GRANT:
                d = next((d for d in self._devices if d.device_code == p.get("device_code")), None)
                if d is None:
                    return self._refuse("token: unknown device_code", 400, "invalid_grant")
                now = time.monotonic()
                if d.last_poll is not None and now - d.last_poll < self.device_interval - 0.2:
                    self.too_fast += 1
                d.last_poll = now
                d.polls += 1
                if time.time() > d.expires_at:
                    return 400, {"error": "expired_token"}
                if self.slow_down_next > 0:
                    self.slow_down_next -= 1
                    return 400, {"error": "slow_down"}
                if d.state == "pending" and self.device_auto_approve is not None and d.polls > self.device_auto_approve:
                    d.state, d.user = "approved", self.authorize_user
                if d.state == "pending":
                    return 400, {"error": "authorization_pending"}
                if d.state == "denied":
                    return 400, {"error": "access_denied", "error_description": "The user declined"}
                if d.state == "done":
                    return self._refuse("token: device code used twice", 400, "invalid_grant")
                d.state = "done"
                return self._token_reply(d.user, d.client_id, d.scope)
            return self._refuse("token: grant_type %r" % gt, 400, "unsupported_grant_type")

    def handle_device(self, p, basic):
        with self._lock:
            self.calls["device"] += 1
            self.history.append(("device", dict(p)))
            if not self._client_ok(p, basic):
                return self._refuse("device: client authentication failed", 401, "invalid_client")
            alphabet = "BCDFGHJKLMNPQRSTVWXZ"
            uc = "".join(secrets.choice(alphabet) for _ in range(8))
            uc = uc[:4] + "-" + uc[4:]
            dc = "dc-" + secrets.token_urlsafe(24)
            self._issued.append(dc)
            scope = p.get("scope") or self.scope
            self._devices.append(_Device(dc, uc, p.get("client_id") or self.client_id, scope,
                                         time.time() + self.device_lifetime))
            return 200, {"device_code": dc, "user_code": uc, "verification_uri": self.verification_uri,
                         "verification_uri_complete": self.verification_uri + "?user_code=" + uc,
                         "expires_in": self.device_lifetime, "interval": self.device_interval}

    def handle_introspect(self, token):
        with self._lock:
            self.calls["introspect"] += 1
            self.history.append(("introspect", {"token": token}))
            t = self._tokens.get(token or "")
            now = time.time()
            if t is None or t.kind != "access" or not t.is_active(now):
                return self.inactive_status, {"active": False}
            reply = {"active": True, "username": t.user, "email": t.user, "sub": t.user, "scope": t.scope,
                     "client_id": t.client_id, "token_type": "Bearer", "iat": int(t.issued_at)}
            if t.expires_at is not None:
                reply["exp"] = int(t.expires_at)
                reply["expires_in"] = max(0, int(t.expires_at - now))
            reply.update(self.introspect_extra)
            return 200, reply

    def handle_revoke(self, p, basic):
        with self._lock:
            self.calls["revoke"] += 1
            self.history.append(("revoke", dict(p)))
            t = self._tokens.get(p.get("token", ""))
            if t is not None:
                t.revoked = True
            return 200, {}


class _Handler(http.server.BaseHTTPRequestHandler):
    server_fake = None
    server_version = "fakeoauth"
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body, headers=None, ctype="application/json"):
        data = (json.dumps(body) if ctype == "application/json" else body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _basic(self):
        h = self.headers.get("Authorization", "")
        if h[:6].lower() == "basic ":
            try:
                u, _, pw = base64.b64decode(h[6:]).decode().partition(":")
                return urllib.parse.unquote(u), urllib.parse.unquote(pw)
            except ValueError:
                return ("", "")
        return None

    def _bearer(self):
        h = self.headers.get("Authorization", "")
        return h[7:].strip() if h[:7].lower() == "bearer " else None

    def _form(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(n, 1 << 20)).decode("utf-8", "replace")
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def do_GET(self):
        f = self.server_fake
        u = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        if u.path == "/authorize":
            status, headers, text = f.handle_authorize(q)
            self._send(status, text + "\n", headers, ctype="text/plain; charset=utf-8")
        elif u.path == "/introspect" or u.path.startswith("/introspect/"):
            token = u.path[len("/introspect/"):] if u.path.startswith("/introspect/") else None
            token = urllib.parse.unquote(token) if token else (q.get("token") or q.get("access_token") or self._bearer())
            self._send(*f.handle_introspect(token))
        elif u.path == "/device":
            self._send(200, "Enter the code shown on your device.\n", ctype="text/plain; charset=utf-8")
        else:
            f.calls["other"] += 1
            self._send(404, {"error": "not_found"})

    def do_POST(self):
        f = self.server_fake
        path = urllib.parse.urlsplit(self.path).path
        p = self._form()
        if path == "/token":
            self._send(*f.handle_token(p, self._basic()))
        elif path == "/device_authorization":
            self._send(*f.handle_device(p, self._basic()))
        elif path == "/introspect" or path.startswith("/introspect/"):
            self._send(*f.handle_introspect(p.get("token") or self._bearer()))
        elif path == "/revoke":
            self._send(*f.handle_revoke(p, self._basic()))
        else:
            f.calls["other"] += 1
            self._send(404, {"error": "not_found"})


def _main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description="A fake OAuth 2.0 server on 127.0.0.1 that approves every sign-in.")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--client-id", default="mailfetch-test")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--access-lifetime", type=int, default=3600)
    a = ap.parse_args(argv)
    srv = FakeOAuth(client_id=a.client_id, port=a.port, access_lifetime=a.access_lifetime)
    srv.authorize_user = a.user
    srv.device_auto_approve = 1
    srv.start()
    for k in ("authorize_url", "token_url", "device_url", "introspect_url", "revoke_url"):
        print("%s = %s" % (k, getattr(srv, k)), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    _main()
