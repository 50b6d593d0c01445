#!/usr/bin/env python3
"""SCRAM against a real Dovecot.

- A Dovecot that stores SCRAM-SHA-256 credentials (made by `doveadm pw`)
  and offers only SCRAM-SHA-256 and SCRAM-SHA-1 (LOGINDISABLED: not even
  LOGIN): auth = auto logs in with SCRAM-SHA-256 over implicit TLS and
  STARTTLS, mail is delivered byte-exact and marked \\Seen; the trace
  shows the mechanism and no form of the password.
- A wrong password is exit 3 naming the account and the mechanism, and
  nothing is fetched.
- auth = plain there is exit 3 naming what the server offers, and no
  password is sent.
- A Dovecot offering PLAIN, LOGIN and SCRAM: auto chooses SCRAM-SHA-256;
  auth = scram-sha-1 uses SCRAM-SHA-1; auth = plain uses PLAIN."""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def mechanism_used(stderr):
    m = re.search(r"IMAP> \S+ (AUTHENTICATE \S+|LOGIN)", stderr)
    return m.group(1) if m else None


def test(t):
    dv = t.dovecot(auth_mechanisms="scram-sha-256 scram-sha-1", password_scheme="SCRAM-SHA-256")
    user, pw = "alice", dv.users["alice"]
    msgs = h.sample_messages(3)
    dv.append_many(user, "INBOX", msgs)
    mbox = t.path("scram.mbox")
    for tls in ("implicit", "starttls"):
        what = "SCRAM-only Dovecot, %s" % tls
        r = t.run(["-v", "-v"], h.config({"acct": h.dovecot_keys(dv, tls=tls, deliver="mbox", mbox=mbox,
                                                                 fetch="all", keep="yes")}))
        t.exit_code(r, h.EX_OK, what)
        t.eq(mechanism_used(r.stderr), "AUTHENTICATE SCRAM-SHA-256", "%s: auto chose SCRAM-SHA-256" % what)
        t.check("LOGINDISABLED" in r.stderr, "%s: the server offered no LOGIN" % what)
        t.no_secrets(r.out + r.err, user, pw, what)
    got = h.parse_mbox(h.read_file(mbox))
    t.messages_equal(got[:3], msgs, "SCRAM login: mail delivered byte-exact")
    t.messages_equal(got[3:], msgs, "SCRAM login over STARTTLS: mail delivered again (fetch = all)")
    t.check(all("\\Seen" in f for f in dv.flags(user).values()), "messages marked \\Seen", dv.flags(user))

    # A wrong password: exit 3 with the mechanism named; nothing fetched.
    before = os.path.getsize(mbox)
    keys = h.dovecot_keys(dv, deliver="mbox", mbox=mbox, fetch="all", password="not-the-password")
    r = t.run(["-v", "-v"], h.config({"acct": keys}))
    t.exit_code(r, h.EX_AUTH, "SCRAM with a wrong password")
    t.check(re.search(r"acct \(alice@127\.0\.0\.1\): login with SCRAM-SHA-256 failed: server said NO", r.stderr),
            "the error names the account and the mechanism", r.stderr)
    t.check("UID FETCH" not in r.stderr, "nothing fetched after a failed login")
    t.eq(os.path.getsize(mbox), before, "nothing delivered after a failed login")
    t.no_secrets(r.out + r.err, user, "not-the-password", "wrong password")

    # auth = plain on a SCRAM-only server: refused here, the password never sent.
    r = t.run(["-v", "-v"], h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox, auth="plain")}))
    t.exit_code(r, h.EX_AUTH, "auth = plain on a SCRAM-only server")
    t.check("offers no mechanism this account can use (it offers: SCRAM-SHA-256 SCRAM-SHA-1)" in r.stderr,
            "the error says what the server offers", r.stderr)
    t.eq(mechanism_used(r.stderr), None, "no AUTHENTICATE or LOGIN sent")

    # A server offering PLAIN, LOGIN and SCRAM, the passwords stored in clear.
    dv2 = t.dovecot(auth_mechanisms="plain login scram-sha-256 scram-sha-1")
    pw2 = dv2.users["alice"]
    mbox2 = t.path("mixed.mbox")
    dv2.append_many(user, "INBOX", msgs)
    for auth, want in (("auto", "AUTHENTICATE SCRAM-SHA-256"), ("scram-sha-1", "AUTHENTICATE SCRAM-SHA-1"),
                       ("plain, scram-sha-256", "AUTHENTICATE PLAIN"),
                       ("oauthbearer, scram-sha-1", "AUTHENTICATE SCRAM-SHA-1")):
        keys = h.dovecot_keys(dv2, deliver="mbox", mbox=mbox2, fetch="all", auth=auth)
        r = t.run(["-v", "-v"], h.config({"acct": keys}))
        t.exit_code(r, h.EX_OK, "PLAIN and SCRAM offered, auth = %s" % auth)
        t.eq(mechanism_used(r.stderr), want, "auth = %s: the mechanism used" % auth)
        t.no_secrets(r.out + r.err, user, pw2, "auth = %s" % auth)
    t.eq(len(h.parse_mbox(h.read_file(mbox2))), 4 * len(msgs), "every run delivered")


h.main(test)
