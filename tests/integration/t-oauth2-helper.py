#!/usr/bin/env python3
"""contrib/mailfetch-oauth2 end to end against the fake authorization
server (tests/lib/fakeoauth.py) on 127.0.0.1, the test playing the browser:

- authorize (code + PKCE through the loopback redirect) stores a refresh
  token in a 0600 file in a 0700 directory; `token` prints the access
  token alone on stdout, a second `token` uses the cache, a token with
  less than a minute left is refreshed and the rotated refresh token
  stored (the old one kept when the provider does not rotate);
- the device flow, with authorization_pending and slow_down, polled no
  faster than the interval;
- the Secret Service store through libsecret's file backend (skipped
  alone when secret-tool is missing);
- a wrong state, a denied sign-in, a lapsed wait, a denied or expired
  device code, a refused refresh token, no refresh token, a token file
  open to others and plain http off loopback each fail with one line on
  stderr naming the account and exit 1;
- revoke revokes at the provider and forgets;
- no token, code or device code ever appears on stderr.
Needs neither the mailfetch binary nor Dovecot."""

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h
import fakeoauth

HELPER = os.path.join(h.SRCDIR, "contrib", "mailfetch-oauth2")


class Run:
    def __init__(self, args, code, out, err, elapsed):
        self.args, self.code, self.out, self.err, self.elapsed = args, code, out, err, elapsed

    def __str__(self):
        return "mailfetch-oauth2 %s -> exit %s (%.2fs)\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(self.args), self.code, self.elapsed, self.out, self.err)


class Helper:
    """Runs the helper with a private HOME, XDG dirs and no desktop, and
    keeps every run for the leak check at the end."""

    def __init__(self, t, fake):
        self.t = t
        self.fake = fake
        self.runs = []
        self.home = t.mkdir("home")
        self.data = os.path.join(t.path("xdg-data"))
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "SECRET_BACKEND", "SECRET_FILE_TEST_PATH",
                                 "SECRET_FILE_TEST_PASSWORD", "XDG_CONFIG_HOME", "XDG_DATA_HOME")}
        # No way to a real keyring of whoever runs the test.
        self.env.update({"HOME": self.home, "XDG_CONFIG_HOME": t.mkdir("xdg-config"), "XDG_DATA_HOME": self.data,
                         "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + t.path("no-such-bus"),
                         "http_proxy": "http://192.0.2.1:9", "https_proxy": "http://192.0.2.1:9",
                         "no_proxy": "", "NO_PROXY": ""})
        self.config = os.path.join(self.env["XDG_CONFIG_HOME"], "mailfetch", "oauth2.ini")

    def write_config(self, sections):
        os.makedirs(os.path.dirname(self.config), exist_ok=True)
        with open(self.config, "w") as f:
            for name, keys in sections.items():
                f.write("[%s]\n" % name)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")
        os.chmod(self.config, 0o600)

    def argv(self, args):
        return [sys.executable, HELPER] + list(args)

    def run(self, args, env=None, timeout=60):
        e = dict(self.env, **(env or {}))
        t0 = time.monotonic()
        p = subprocess.run(self.argv(args), env=e, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        r = Run(args, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"),
                time.monotonic() - t0)
        self.runs.append(r)
        self.t.log("ran: mailfetch-oauth2 %s -> exit %s (%.2fs)" % (" ".join(args), r.code, r.elapsed))
        return r

    def start(self, args, env=None):
        """Start the helper; returns (Popen, stderr lines list filled by a thread)."""
        e = dict(self.env, **(env or {}))
        p = subprocess.Popen(self.argv(args), env=e, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=h._set_pdeathsig)
        h.add_cleanup(lambda: p.poll() is None and p.kill())
        lines = []

        def drain():
            for line in p.stderr:
                lines.append(line.decode(errors="replace"))

        th = threading.Thread(target=drain, daemon=True)
        th.start()
        p.lines, p.drainer, p.args_ = lines, th, args
        return p

    def finish(self, p, timeout=30):
        t0 = time.monotonic()
        try:
            out = p.stdout.read()
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            out = b""
        p.drainer.join(5)
        r = Run(p.args_, p.returncode, out.decode(errors="replace"), "".join(p.lines), time.monotonic() - t0)
        self.runs.append(r)
        self.t.log("ran: mailfetch-oauth2 %s -> exit %s" % (" ".join(p.args_), r.code))
        return r

    # -- checks -------------------------------------------------------------

    def one_line_error(self, r, account, what, *words):
        """Exit 1, nothing on stdout, one stderr line naming the account and
        holding every word."""
        t = self.t
        t.eq(r.code, 1, "%s: exit 1" % what, r)
        t.eq(r.out, "", "%s: nothing on stdout" % what, r)
        # authorize and device first print what to open (the prompt): the
        # error is the one line after it.
        lines = [l for l in r.err.splitlines() if l.strip() and not l.startswith("    http")
                 and "open this URL" not in l and "enter the code" not in l]
        ok = (len(lines) == 1 and lines[0].startswith("mailfetch-oauth2: %s: " % account)
              and all(w in lines[0] for w in words))
        t.check(ok, "%s: one line on stderr, naming %s and saying %s" % (what, account, " / ".join(words)), r)

    def file_record(self, account):
        import json

        p = os.path.join(self.data, "mailfetch", "oauth2", account + ".json")
        try:
            with open(p) as f:
                return json.load(f)
        except FileNotFoundError:
            return None


def wait_line(p, pattern, timeout=15.0):
    """The first stderr line of p matching pattern (a regex), or None."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(p.lines):
            m = rx.search(line)
            if m:
                return m
        if p.poll() is not None and not p.drainer.is_alive():
            break
        time.sleep(0.02)
    return None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


BROWSER = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)


def browser_get(url):
    """(status, Location or None, body) of a GET, no redirect followed."""
    try:
        with BROWSER.open(url, timeout=15) as r:
            return r.status, r.headers.get("Location"), r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers.get("Location"), e.read().decode(errors="replace")


def sign_in(t, hp, account, extra=(), tamper=None, env=None, idle_first=False):
    """authorize ACCOUNT, playing the browser: fetch the printed URL at the
    fake server, follow its redirect to the helper's listener (after
    tamper(location), if given; idle_first: with an idle connection to the
    listener open, as a browser's speculative one).  Returns (Run, the
    redirect's Location)."""
    p = hp.start(["authorize", account, "--no-browser", "--wait", "30"] + list(extra), env=env)
    m = wait_line(p, r"^\s+(http://127\.0\.0\.1:\d+/authorize\?\S+)\s*$")
    if not t.check(m is not None, "authorize %s: the URL to open is printed on stderr" % account, "".join(p.lines)):
        return hp.finish(p, timeout=5), None
    status, loc, _ = browser_get(m.group(1))
    t.check(status == 302 and loc, "authorize %s: the fake server redirects the browser" % account,
            "%s %s" % (status, loc))
    if tamper:
        loc = tamper(loc)
    idle = None
    if idle_first:
        u = urllib.parse.urlsplit(loc)
        idle = socket.create_connection((u.hostname, u.port), timeout=5)
        time.sleep(0.3)
    t0 = time.monotonic()
    status, _, body = browser_get(loc)
    t.log("browser: redirect answered %s: %s" % (status, body.strip()[:120]))
    r = hp.finish(p)
    if idle is not None:
        t.check(time.monotonic() - t0 < 5, "an idle connection to the listener does not hold the redirect up")
        idle.close()
    return r, loc


def test(t):
    fake = fakeoauth.FakeOAuth(client_id="mf-client").start()
    t.servers.append(fake)
    hp = Helper(t, fake)
    t.check(os.access(HELPER, os.X_OK), "contrib/mailfetch-oauth2 is executable")
    endpoints = {"authorize_url": fake.authorize_url, "token_url": fake.token_url,
                 "device_url": fake.device_url, "revoke_url": fake.revoke_url}
    hp.write_config({
        "acct": dict(provider="custom", client_id="mf-client", scope="imap offline_access", store="file", **endpoints),
        "dev": dict(provider="custom", client_id="mf-client", store="file", **endpoints),
        # A preset with its endpoints pointed at the fake.
        "ms": dict(provider="microsoft", tenant="example.org", client_id="mf-client", store="file", **endpoints),
    })

    # -- authorize: code + PKCE through the loopback redirect ----------------
    r, loc = sign_in(t, hp, "acct", idle_first=True)
    t.eq(r.code, 0, "authorize acct: exit 0", r)
    t.eq(r.out, "", "authorize acct: nothing on stdout", r)
    t.check("authorized" in r.err, "authorize acct: says it is authorized", r)
    auth_q = dict(next((p for ep, p in fake.history if ep == "authorize"), {}))
    t.eq(auth_q.get("code_challenge_method"), "S256", "authorize sends a PKCE S256 challenge")
    t.check(re.match(r"^http://127\.0\.0\.1:\d+$", auth_q.get("redirect_uri", "")),
            "the redirect URI is http://127.0.0.1:PORT", auth_q.get("redirect_uri"))
    t.check(len(auth_q.get("state", "")) >= 20, "authorize sends a random state", auth_q.get("state"))
    t.eq(fake.grants["authorization_code"], 1, "the code was exchanged once")
    t.eq(fake.errors, [], "the fake server refused nothing (client_id, redirect_uri, PKCE verifier)")

    d = os.path.join(hp.data, "mailfetch", "oauth2")
    f = os.path.join(d, "acct.json")
    t.require(os.path.exists(f), "the tokens are in %s" % f)
    t.eq(stat.S_IMODE(os.stat(d).st_mode), 0o700, "the token directory is mode 0700")
    t.eq(stat.S_IMODE(os.stat(f).st_mode), 0o600, "the token file is mode 0600")
    t.eq([n for n in os.listdir(d) if n.startswith(".")], [], "no temporary file left behind")
    rts = fake.tokens(kind="refresh", user="alice", active=True)
    rec = hp.file_record("acct")
    t.check(len(rts) == 1 and rec and rec.get("refresh_token") == rts[0].value,
            "the stored refresh token is the one the server issued", rec and rec.keys())

    # -- token: printed alone, cached -------------------------------------------
    before = fake.calls["token"]
    r1 = hp.run(["token", "acct"])
    t.eq(r1.code, 0, "token acct: exit 0", r1)
    at1 = r1.out.rstrip("\n")
    t.check(r1.out.count("\n") == 1 and fake.active(at1) and fake.user_of(at1) == "alice",
            "token prints one line: an active access token for alice", r1)
    t.eq(r1.err, "", "token: nothing on stderr", r1)
    r2 = hp.run(["token", "acct"])
    t.eq(r2.out, r1.out, "a second token prints the same cached access token", r2)
    t.eq(fake.calls["token"], before, "no request to the token endpoint while the cached token is good")

    # -- refresh, with rotation ---------------------------------------------------
    old_rt = rec["refresh_token"]
    r3 = hp.run(["token", "acct", "--min-validity", "7200"])
    at3 = r3.out.rstrip("\n")
    t.check(r3.code == 0 and at3 != at1 and fake.active(at3), "a token with too little time left is refreshed", r3)
    t.eq(fake.grants["refresh_token"], 1, "one refresh_token grant")
    refresh_q = [p for ep, p in fake.history if ep == "token" and p.get("grant_type") == "refresh_token"][-1]
    t.eq(refresh_q.get("refresh_token"), old_rt, "the refresh used the stored refresh token")
    t.eq(refresh_q.get("scope"), "imap offline_access", "the refresh asks for the configured scope")
    rec3 = hp.file_record("acct")
    t.check(rec3["refresh_token"] != old_rt and fake.active(rec3["refresh_token"]) and not fake.active(old_rt),
            "the rotated refresh token is stored (the old one is dead)")
    t.eq(stat.S_IMODE(os.stat(f).st_mode), 0o600, "the rewritten token file is mode 0600")
    r4 = hp.run(["token", "acct"])
    t.eq(r4.out, r3.out, "the refreshed token is cached")

    # An access token that really runs out: less than the default 60 s left.
    fake.access_lifetime = 2
    r5 = hp.run(["token", "acct", "--min-validity", "7200"])
    at5 = r5.out.rstrip("\n")
    n = fake.grants["refresh_token"]
    r6 = hp.run(["token", "acct"])
    at6 = r6.out.rstrip("\n")
    t.check(r6.code == 0 and at6 != at5 and fake.active(at6) and fake.grants["refresh_token"] == n + 1,
            "an access token about to expire is refreshed by a plain `token`", r6)
    fake.access_lifetime = 3600

    # A provider that does not rotate (Google): the refresh token is kept.
    fake.rotate_refresh = False
    kept = hp.file_record("acct")["refresh_token"]
    r7 = hp.run(["token", "acct", "--min-validity", "7200"])
    t.check(r7.code == 0 and fake.active(r7.out.strip()), "refresh without rotation works", r7)
    t.eq(hp.file_record("acct")["refresh_token"], kept, "without rotation the stored refresh token stays")
    fake.rotate_refresh = True

    r = hp.run(["status", "acct"])
    t.check(r.code == 0 and "refresh token: yes" in r.out and "valid for" in r.out, "status says what is stored", r)
    t.check(not any(s in r.out for s in fake.secrets()), "status prints no token", r)

    # -- failures of the token command ----------------------------------------------
    hp.one_line_error(hp.run(["token", "nobody", "--provider", "custom", "--client-id", "mf-client",
                              "--token-url", fake.token_url, "--store", "file"]),
                      "nobody", "token without a refresh token", "mailfetch-oauth2 authorize nobody")
    fake.revoke(hp.file_record("acct")["refresh_token"])
    hp.one_line_error(hp.run(["token", "acct", "--min-validity", "7200"]), "acct", "a refused refresh token",
                      "invalid_grant", "mailfetch-oauth2 authorize acct")
    hp.one_line_error(hp.run(["token", "acct", "--token-url", "http://192.0.2.1/token"]), "acct",
                      "plain http off loopback", "https")
    hp.one_line_error(hp.run(["token", "acct", "--token-url", "file:///etc/passwd"]), "acct",
                      "a non-http URL", "http(s)")
    # A token endpoint that takes the connection and never answers.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(4)
        t0 = time.monotonic()
        r = hp.run(["token", "acct", "--min-validity", "7200", "--timeout", "1",
                    "--token-url", "http://127.0.0.1:%d/token" % mute.getsockname()[1]])
        hp.one_line_error(r, "acct", "a token endpoint that never answers", "within 1 s")
        t.check(time.monotonic() - t0 < 10, "the silent token endpoint is given up on after --timeout")
    os.chmod(f, 0o644)
    hp.one_line_error(hp.run(["token", "acct"]), "acct", "a token file open to others", "chmod 600")
    os.chmod(f, 0o600)
    hp.one_line_error(hp.run(["token", "ghost"]), "ghost", "an account without settings", "provider")

    # A client secret: from a file, never the command line; a config file
    # holding one must be the user's alone.
    with open(t.path("client-secret"), "w") as cs:
        cs.write("s3cret-of-the-client\n")
    n = len(fake.history)
    r = hp.run(["device", "dev", "--client-secret-file", t.path("client-secret"), "--wait", "1"])
    q = next((p for ep, p in fake.history[n:] if ep == "device"), {})
    t.eq(q.get("client_secret"), "s3cret-of-the-client", "--client-secret-file: the secret is sent to the provider")
    t.check("s3cret" not in r.err, "the client secret is not on stderr", r)
    bad = t.path("open.ini")
    with open(bad, "w") as cf:
        cf.write("[acct]\nprovider = google\nclient_id = x\nclient_secret = s3cret-of-the-client\n")
    os.chmod(bad, 0o644)
    hp.one_line_error(hp.run(["token", "acct", "--config", bad]), "acct", "a config with a client_secret open to others",
                      "chmod 600")

    # -- authorize failures --------------------------------------------------------
    def wrong_state(loc):
        return re.sub(r"state=[^&]*", "state=forged", loc)

    r, _ = sign_in(t, hp, "dev", tamper=wrong_state)
    hp.one_line_error(r, "dev", "a redirect with a wrong state", "state")
    t.eq(hp.file_record("dev"), None, "nothing stored after a wrong state")
    fake.authorize_mode = "deny"
    r, _ = sign_in(t, hp, "dev")
    hp.one_line_error(r, "dev", "a denied sign-in", "access_denied")
    fake.authorize_mode = "approve"
    r = hp.run(["authorize", "dev", "--no-browser", "--wait", "1"])
    hp.one_line_error(r, "dev", "no redirect within the wait", "1 s")

    # -- device flow -------------------------------------------------------------------
    fake.slow_down_next = 1
    polls0 = fake.grants[fakeoauth.DEVICE_GRANT]
    p = hp.start(["device", "dev", "--wait", "60"])
    m = wait_line(p, r"open (\S+) and enter the code (\S+)")
    if t.check(m is not None, "device: the verification URI and user code are printed", "".join(p.lines)):
        t.eq(m.group(1), fake.verification_uri, "device: the verification URI is the server's")
        uc = m.group(2)
        t.check(h.wait_for(lambda: fake.grants[fakeoauth.DEVICE_GRANT] >= polls0 + 2, 30),
                "device: the helper polls (slow_down, then authorization_pending)")
        fake.approve_device(uc, user="alice")
    r = hp.finish(p, timeout=40)
    t.eq(r.code, 0, "device dev: exit 0 once approved", r)
    t.eq(fake.too_fast, 0, "device: never polled sooner than the interval (slow_down adds 5 s)")
    r = hp.run(["token", "dev"])
    t.check(r.code == 0 and fake.active(r.out.strip()) and fake.user_of(r.out.strip()) == "alice",
            "token after the device flow", r)

    p = hp.start(["device", "dev", "--wait", "60"])
    t.check(wait_line(p, r"enter the code") is not None, "device (to deny): the code is printed")
    fake.deny_device()
    hp.one_line_error(hp.finish(p, timeout=30), "dev", "a denied device code", "access_denied")
    p = hp.start(["device", "dev", "--wait", "60"])
    t.check(wait_line(p, r"enter the code") is not None, "device (to expire): the code is printed")
    fake.expire_device()
    hp.one_line_error(hp.finish(p, timeout=30), "dev", "an expired device code", "expired", "device dev")
    r = hp.run(["token", "dev"])
    t.check(r.code == 0 and fake.active(r.out.strip()), "a failed device sign-in leaves the stored tokens alone", r)

    # -- a preset with its endpoints overridden ----------------------------------------
    n = len(fake.history)
    r, _ = sign_in(t, hp, "ms")
    t.eq(r.code, 0, "authorize with the microsoft preset pointed at the fake", r)
    q = next((p for ep, p in fake.history[n:] if ep == "authorize"), {})
    t.eq(q.get("scope"), "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
         "the microsoft preset asks for IMAP.AccessAsUser.All and offline_access")
    t.check(q.get("redirect_uri", "").startswith("http://localhost:"), "the microsoft preset redirects to localhost",
            q.get("redirect_uri"))

    # -- revoke and forget -------------------------------------------------------------
    rt = hp.file_record("dev")["refresh_token"]
    rv = fake.calls["revoke"]
    r = hp.run(["revoke", "dev"])
    t.check(r.code == 0 and fake.calls["revoke"] == rv + 1 and not fake.active(rt),
            "revoke revokes the refresh token at the provider", r)
    t.eq(hp.file_record("dev"), None, "revoke forgets the stored tokens")
    hp.one_line_error(hp.run(["token", "dev"]), "dev", "token after revoke", "mailfetch-oauth2 authorize dev")
    r = hp.run(["forget", "ms"])
    t.check(r.code == 0 and hp.file_record("ms") is None, "forget removes the token file", r)

    # -- auto store without a Secret Service: the file -----------------------------------
    r, _ = sign_in(t, hp, "auto1", extra=["--provider", "custom", "--client-id", "mf-client",
                                            "--authorize-url", fake.authorize_url, "--token-url", fake.token_url])
    t.check(r.code == 0 and hp.file_record("auto1") is not None,
            "store auto without a Secret Service keeps the tokens in the file", r)

    # -- Secret Service through libsecret's file backend -----------------------------------
    secret_part(t, hp, fake)

    # -- nothing secret on stderr, ever --------------------------------------------------------
    issued = fake.secrets()
    leaks = [(r.args, s[:10]) for r in hp.runs for s in issued if s in r.err]
    t.check(not leaks, "no token, code or device code on stderr in %d runs" % len(hp.runs), leaks)
    leaks = [(r.args, s[:10]) for r in hp.runs if r.args[:1] != ["token"] for s in issued if s in r.out]
    t.check(not leaks, "no token on stdout but from `token`", leaks)


def secret_part(t, hp, fake):
    if shutil.which("secret-tool") is None:
        t.log("SKIP (part): secret-tool (libsecret-tools) is not installed")
        return
    env = {"SECRET_BACKEND": "file", "SECRET_FILE_TEST_PATH": t.path("keyring"),
           "SECRET_FILE_TEST_PASSWORD": "keyring-unlock"}
    extra = ["--provider", "custom", "--client-id", "mf-client", "--authorize-url", fake.authorize_url,
             "--token-url", fake.token_url]
    r, _ = sign_in(t, hp, "sec", extra=extra + ["--store", "secret"], env=env)
    t.eq(r.code, 0, "authorize with --store secret", r)
    t.eq(hp.file_record("sec"), None, "no token file with the Secret Service")
    e = dict(hp.env, **env)
    lk = subprocess.run(["secret-tool", "lookup", "service", "mailfetch-oauth2", "account", "sec"], env=e,
                        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    rts = fake.tokens(kind="refresh", user="alice", active=True)
    t.check(lk.returncode == 0 and any(x.value.encode() in lk.stdout for x in rts),
            "secret-tool finds the refresh token under service mailfetch-oauth2 account sec")
    r = hp.run(["token", "sec", "--store", "secret"] + extra, env=env)
    at = r.out.strip()
    t.check(r.code == 0 and fake.active(at), "token from the Secret Service", r)
    r = hp.run(["token", "sec"] + extra, env=env)
    t.eq(r.out.strip(), at, "store auto finds the Secret Service item and its cached token")
    old = [x.value for x in rts]
    r = hp.run(["token", "sec", "--min-validity", "7200"] + extra, env=env)
    t.check(r.code == 0 and fake.active(r.out.strip()) and r.out.strip() != at, "refresh with the Secret Service", r)
    lk = subprocess.run(["secret-tool", "lookup", "service", "mailfetch-oauth2", "account", "sec"], env=e,
                        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    new_rts = [x.value for x in fake.tokens(kind="refresh", user="alice", active=True)]
    t.check(lk.returncode == 0 and any(v.encode() in lk.stdout for v in new_rts if v not in old),
            "the rotated refresh token is in the Secret Service")
    r = hp.run(["forget", "sec"] + extra, env=env)
    lk = subprocess.run(["secret-tool", "lookup", "service", "mailfetch-oauth2", "account", "sec"], env=e,
                        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    t.check(r.code == 0 and lk.returncode != 0 and not lk.stdout, "forget clears the Secret Service item", r)
    hp.one_line_error(hp.run(["token", "sec", "--store", "secret"] + extra, env=env), "sec",
                      "token after forget (Secret Service)", "mailfetch-oauth2 authorize sec")
    # --store secret where there is no Secret Service: an error, not a silent file.
    hp.one_line_error(hp.run(["token", "sec", "--store", "secret"] + extra), "sec",
                      "--store secret without a Secret Service", "secret-tool")


h.main(test)
