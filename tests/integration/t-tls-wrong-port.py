#!/usr/bin/env python3
"""TLS mode and port that do not match are recognised at once and say
what to change, rather than waiting for the timeout:

- tls = starttls (or none) on Dovecot's implicit-TLS port: the server
  sends no greeting; after a moment mailfetch asks the port, on a second
  connection, whether it answers a TLS handshake, and it does: exit 2,
  "use tls = implicit", long before timeout (60 s here).
- tls = implicit on the plaintext port: the server's "* OK" greeting is
  recognised in place of the handshake: exit 2, "use tls = starttls".
- A plaintext server that is merely slow to greet (3 s, the fake server)
  is still fetched from: the probe finds no TLS there.
No password is sent in any of these."""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    dv = t.dovecot()
    for tls, extra in (("starttls", {}), ("none", {"allow_plaintext": "yes"})):
        what = "tls = %s on the implicit-TLS port" % tls
        keys = h.dovecot_keys(dv, tls=tls, port=dv.ssl_port, timeout=60, deliver="mbox", mbox=t.path("x.mbox"),
                              **extra)
        start = time.monotonic()
        r = t.run([], h.config({"acct": keys}), timeout=120)
        took = time.monotonic() - start
        t.exit_code(r, h.EX_CONNECT, what)
        t.check("speaks TLS from the start; use tls = implicit" in r.stderr, "%s: says use tls = implicit" % what,
                r.stderr)
        t.check(took < 30, "%s: recognised long before the 60 s timeout (took %.1f s)" % (what, took))
    what = "tls = implicit on the plaintext port"
    keys = h.dovecot_keys(dv, tls="implicit", port=dv.port, timeout=60, deliver="mbox", mbox=t.path("x.mbox"))
    r = t.run([], h.config({"acct": keys}), timeout=120)
    t.exit_code(r, h.EX_CONNECT, what)
    t.check('the server greeted in plain text ("* OK ...") where a TLS handshake was due' in r.stderr and
            "use tls = starttls" in r.stderr, "%s: says use tls = starttls" % what, r.stderr)
    t.eq(dv.login_count(), 0, "no login in any of these")

    # A slow plaintext greeting is waited for, as before.
    msg = h.sample_message(1)

    def slow_greeting(sess):
        time.sleep(3)

    srv = t.fake(tls="none", starttls="absent", messages=[msg], before_greeting=slow_greeting)
    r = t.run(["-v"], h.config({"acct": h.fake_keys(srv, tls="none", allow_plaintext="yes", deliver="mbox",
                                                    mbox=t.path("slow.mbox"))}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "a plaintext server slow to greet")
    t.messages_equal(h.parse_mbox(h.read_file(t.path("slow.mbox"))), [msg], "its mail delivered")
    t.eq(srv.connections(), 2, "the probe's connection and the real one")


h.main(test)
