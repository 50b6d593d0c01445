#!/usr/bin/env python3
"""A certificate signed by the trusted CA whose subject CN is the host name
(localhost) but which has no subjectAltName: RFC 9525 says a client must
never take the name from the CN, so it is refused with exit 2, an error
line naming the name mismatch, and not one byte of IMAP after the
handshake (fake server, implicit TLS and STARTTLS).  The certificate with
the same name in subjectAltName works through the same name (control)."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def after_tls(srv):
    """Lines received after the first TLS handshake event of each connection."""
    out = []
    started = set()
    for conn, kind, data in list(srv.events):
        if kind in ("tls-ok", "tls-failed"):
            started.add(conn)
        elif kind == "recv" and conn in started:
            out.append(data)
    return out


def test(t):
    msg = h.sample_message(1)
    for tls in ("implicit", "starttls"):
        what = "CN=localhost without subjectAltName, %s" % tls
        srv = t.fake(tls=tls if tls == "implicit" else "none", cert="cnonly", messages=[msg])
        mbox = t.path("cnonly-%s.mbox" % tls)
        r = t.run([], h.config({"acct": h.fake_keys(srv, host="localhost", tls=tls,
                                                     deliver="mbox", mbox=mbox)}))
        srv.stop()
        t.exit_code(r, h.EX_CONNECT, what)
        t.check("tls-ok" in srv.kinds() or "tls-failed" in srv.kinds(),
                "%s: a TLS handshake was attempted" % what, srv.log_tail())
        t.check("mailfetch: acct" in r.stderr and "hostname mismatch" in r.stderr,
                "%s: the error line names the name mismatch" % what, r.stderr)
        t.check("subjectAltName" in r.stderr, "%s: the error line says what the certificate lacks" % what,
                r.stderr)
        t.eq(after_tls(srv), [], "%s: nothing received after the handshake" % what, srv.log_tail())
        t.check(not srv.saw("LOGIN") and not srv.saw("AUTHENTICATE"), "%s: no LOGIN/AUTHENTICATE" % what)
        t.eq(h.read_file(mbox), b"", "%s: nothing delivered" % what)

    # Control: the same CA, the same name, in subjectAltName this time.
    srv = t.fake(tls="implicit", cert="good", messages=[msg])
    mbox = t.path("good.mbox")
    r = t.run([], h.config({"acct": h.fake_keys(srv, host="localhost", deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "DNS:localhost in subjectAltName")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), [msg], "DNS:localhost in subjectAltName: delivered")


h.main(test)
