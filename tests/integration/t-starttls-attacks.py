#!/usr/bin/env python3
"""STARTTLS stripping, STARTTLS response injection and PREAUTH while TLS is
required (fake server): exit 4, and no LOGIN/AUTHENTICATE ever on the wire."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def run_case(t, what, **fake):
    srv = t.fake(messages=[h.sample_message(1)], **fake)
    mbox = t.path(what.replace(" ", "-") + ".mbox")
    r = t.run([], h.config({"acct": h.fake_keys(srv, tls="starttls", deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_PROTO, what)
    t.check(not srv.saw("LOGIN") and not srv.saw("AUTHENTICATE"),
            "%s: no LOGIN/AUTHENTICATE on the wire" % what, srv.log_tail())
    t.check(not srv.saw("SELECT") and not srv.saw("FETCH") and not srv.saw("STORE"),
            "%s: no SELECT/FETCH/STORE" % what, srv.command_names())
    t.eq(h.read_file(mbox), b"", "%s: nothing delivered" % what)
    t.eq(srv.flags(), {1: set()}, "%s: server flags untouched" % what)
    t.check("mailfetch: acct" in r.stderr, "%s: an error line names the account" % what, r.stderr)
    return srv, r


def test(t):
    # Server does not offer STARTTLS: the client must not fall back.
    srv, r = run_case(t, "STARTTLS not offered", starttls="absent")

    # Also when the server offers LOGINDISABLED-free plaintext login and the
    # greeting has no capabilities (the client has to ask).
    srv, r = run_case(t, "STARTTLS not offered, no greeting caps", starttls="absent", greeting_caps=False)

    # Injection: tagged OK and a plaintext `* CAPABILITY` in the same write.
    srv, r = run_case(t, "STARTTLS response injection", starttls="inject")
    t.check(srv.saw("STARTTLS"), "injection: the client did send STARTTLS", srv.command_names())

    # PREAUTH greeting: already authenticated, STARTTLS impossible.
    srv, r = run_case(t, "PREAUTH while TLS required", greeting="preauth")


h.main(test)
