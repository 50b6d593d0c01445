#!/usr/bin/env python3
"""XOAUTH2 and OAUTHBEARER against a real Dovecot whose oauth2 passdb asks
a token introspection endpoint (tests/lib/fakeoauth.py, RFC 7662) on
loopback.

- oauth_token_command prints a token; a good token logs in with each
  mechanism (auto prefers OAUTHBEARER) and mail is delivered; the token
  never appears in the output, -v -v included.
- An expired token is exit 3 with the server's reason; the next run runs
  oauth_token_command again (once per connection) and, the token fresh,
  fetches.
- A token command that fails or prints nothing is exit 3, nothing sent.
- The chain end to end: contrib/mailfetch-oauth2 signs in to the fake
  provider (device flow), and as oauth_token_command gives the token
  Dovecot accepts."""

import os
import re
import shlex
import subprocess
import sys

sys.dont_write_bytecode = True
SRCDIR = os.environ.get("srcdir") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SRCDIR, "tests", "lib"))
import fakeoauth
import harness as h


def mechanism_used(stderr):
    m = re.search(r"IMAP> \S+ (AUTHENTICATE \S+|LOGIN)", stderr)
    return m.group(1) if m else None


def test(t):
    oauth = fakeoauth.FakeOAuth().start()
    h.add_cleanup(oauth.stop)
    dv = t.dovecot(oauth2_url=oauth.introspect_url)
    user = "alice"
    msgs = h.sample_messages(2)
    dv.append_many(user, "INBOX", msgs)
    mbox = t.path("oauth.mbox")

    # The token command: prints the token file, counts its runs.
    tokfile, count = t.path("token"), t.path("count")
    cmd = t.path("token-cmd")
    with open(cmd, "w") as f:
        f.write("#!/bin/sh\necho run >> '%s'\nexec cat '%s'\n" % (count, tokfile))
    os.chmod(cmd, 0o755)

    def runs():
        return len(h.read_file(count).splitlines())

    def keys(**over):
        k = h.dovecot_keys(dv, deliver="mbox", mbox=mbox, fetch="all", password=None, oauth_token_command=cmd)
        k.update(over)
        return {a: b for a, b in k.items() if b is not None}

    token = oauth.issue(user, lifetime=600)
    with open(tokfile, "w") as f:
        f.write(token + "\n")
    for auth, want in (("auto", "AUTHENTICATE OAUTHBEARER"), ("xoauth2", "AUTHENTICATE XOAUTH2"),
                       ("oauthbearer", "AUTHENTICATE OAUTHBEARER")):
        n = runs()
        r = t.run(["-v", "-v"], h.config({"acct": keys(auth=auth)}))
        t.exit_code(r, h.EX_OK, "good token, auth = %s" % auth)
        t.eq(mechanism_used(r.stderr), want, "auth = %s: mechanism" % auth)
        t.eq(runs(), n + 1, "auth = %s: oauth_token_command ran once" % auth)
        t.check(token.encode() not in r.out + r.err, "auth = %s: the token is not in the output" % auth)
        t.no_secrets(r.out + r.err, user, token, "auth = %s" % auth)
    t.check(oauth.calls["introspect"] >= 3, "Dovecot asked the introspection endpoint", oauth.calls)
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs * 3, "mail delivered by every run")

    # Expired: exit 3 with the server's reason, for both mechanisms.
    oauth.expire(token)
    for auth in ("oauthbearer", "xoauth2"):
        n = runs()
        r = t.run(["-v", "-v"], h.config({"acct": keys(auth=auth)}))
        t.exit_code(r, h.EX_AUTH, "expired token, auth = %s" % auth)
        t.check(re.search(r"acct \(alice@127\.0\.0\.1\): login with %s failed: the server refused the token "
                          r"\(status [^)]*\) and said NO" % auth.upper(), r.stderr),
                "auth = %s: the error gives the server's reason" % auth, r.stderr)
        if auth == "oauthbearer":
            t.check(re.search(r"^mailfetch: acct: IMAP> AQ==$", r.stderr, re.M) is not None,
                    "OAUTHBEARER: the error challenge was answered with ^A (shown: it is no secret)", r.stderr)
        else:
            t.check(re.search(r"^mailfetch: acct: IMAP> $", r.stderr, re.M) is not None,
                    "XOAUTH2: the error challenge was answered with an empty line", r.stderr)
        t.check(not re.search(r"^mailfetch: acct: IMAP> \*$", r.stderr, re.M),
                "the exchange was answered, not cancelled", r.stderr)
        t.check("UID FETCH" not in r.stderr, "auth = %s: nothing fetched" % auth)
        t.eq(runs(), n + 1, "auth = %s: oauth_token_command ran" % auth)
        t.check(token.encode() not in r.out + r.err, "auth = %s: the expired token is not in the output" % auth)

    # The next run runs the command again and gets a fresh token.
    fresh = oauth.issue(user, lifetime=600)
    with open(tokfile, "w") as f:
        f.write(fresh + "\n")
    dv.append(user, "INBOX", h.sample_message(40))
    n = runs()
    r = t.run([], h.config({"acct": keys()}))
    t.exit_code(r, h.EX_OK, "fresh token after an expired one")
    t.eq(runs(), n + 1, "oauth_token_command ran again")

    # A failing or empty token command: exit 3, no connection.
    logins = dv.login_count()
    for text, why in (("#!/bin/sh\nexit 4\n", "exit status 4"), ("#!/bin/sh\necho\n", "printed no access token")):
        with open(cmd, "w") as f:
            f.write(text)
        r = t.run([], h.config({"acct": keys()}))
        t.exit_code(r, h.EX_AUTH, "token command: %s" % why)
        t.check("oauth_token_command" in r.stderr and why in r.stderr, "the error says %s" % why, r.stderr)
    t.eq(dv.login_count(), logins, "no login attempted without a token")

    # End to end: the helper signs in by the device flow, then serves tokens.
    helper = os.path.join(SRCDIR, "contrib", "mailfetch-oauth2")
    env = dict(os.environ, XDG_DATA_HOME=t.path("xdg-data"), XDG_CONFIG_HOME=t.path("xdg-config"))
    common = ["--store", "file", "--provider", "custom", "--client-id", oauth.client_id,
              "--token-url", oauth.token_url, "--device-url", oauth.device_url, "--scope", oauth.scope]
    oauth.device_auto_approve = 1
    oauth.authorize_user = user
    p = subprocess.run([sys.executable, helper] + common + ["device", "acct"], env=env, capture_output=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    t.check(p.returncode == 0, "mailfetch-oauth2 device signed in", p.stderr)
    dv.append(user, "INBOX", h.sample_message(41))
    helper_cmd = " ".join(shlex.quote(a) for a in [sys.executable, helper] + common + ["token", "acct"])
    before = oauth.calls["token"]
    r = t.run(["-v", "-v"], h.config({"acct": keys(oauth_token_command=helper_cmd)}),
              env={"XDG_DATA_HOME": env["XDG_DATA_HOME"], "XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"]})
    t.exit_code(r, h.EX_OK, "oauth_token_command = mailfetch-oauth2 token")
    t.eq(mechanism_used(r.stderr), "AUTHENTICATE OAUTHBEARER", "the helper's token used with OAUTHBEARER")
    for tok in oauth.secrets():
        if tok.encode() in r.out + r.err:
            t.check(False, "no token issued by the provider appears in the output")
            break
    t.log("provider token endpoint calls during the run: %d" % (oauth.calls["token"] - before))


h.main(test)
