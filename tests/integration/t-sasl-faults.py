#!/usr/bin/env python3
"""SCRAM against the scripted fake server, for what Dovecot will not do.

Each of these ends the login with exit 3 and a line that says what was
wrong, and nothing is selected or fetched:
  a wrong server signature, no server signature at all (a tagged OK
  straight after our proof), a nonce that does not extend ours, an
  iteration count of 0 and of 100 million (refused at once, not
  computed), a challenge that is not base64, a mandatory extension, a
  channel binding mismatch (the server sees another certificate, as a
  machine in the middle would show).
And what works:
  SCRAM-SHA-256-PLUS with tls-server-end-point over TLS 1.2 (checked by
  the fake) and with tls-exporter over TLS 1.3 (type and size checked;
  the value itself is checked by tests/unit/test-sasl against the server
  side of a real session);
  SCRAM-SHA-1-PLUS; a server offering no -PLUS gets "y" (we could bind);
  a client told not to use -PLUS where it is offered says "n", never
  the "y" that would read as a downgrade, also when the -PLUS offered is
  of the other hash; SCRAM without SASL-IR.
Without TLS (allow_plaintext), SCRAM is preferred to PLAIN.
LOGINDISABLED with nothing usable: exit 3 naming what the server offers."""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    msg = h.sample_message(1)
    faults = (
        ("bad-signature", r"SCRAM signature is wrong: the server could not prove it knows the password"),
        ("no-signature", r"without sending its SCRAM signature, so it could not prove it knows the password"),
        ("bad-nonce", r"SCRAM nonce does not extend the one this client sent"),
        ("iter0", r"asks for 0 SCRAM iterations, outside 1 to 1000000; refused"),
        ("iter-huge", r"asks for 100000000 SCRAM iterations, outside 1 to 1000000; refused"),
        ("bad-base64", r"AUTHENTICATE challenge is not valid base64"),
        ("mandatory-ext", r"demands an extension \(m=\)"),
        ("cb-mismatch", r'error "channel-bindings-dont-match" \(the TLS connection it sees is not ours'),
    )
    for fault, want in faults:
        mechs = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256") if fault == "cb-mismatch" else ("SCRAM-SHA-256",)
        srv = t.fake(tls="implicit", auth_mechs=mechs, scram_fault=fault, messages=[msg], tls_max="1.2")
        box = t.path("fault-%s.mbox" % fault)
        r = t.run(["-v", "-v"], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=box)}))
        srv.stop()
        t.exit_code(r, h.EX_AUTH, fault)
        t.check(re.search(r"^mailfetch: acct \(alice@127\.0\.0\.1\): .*" + want, r.stderr, re.M) is not None,
                "%s: the error says so" % fault, r.stderr)
        t.check(not srv.saw("SELECT") and not srv.saw("UID FETCH"), "%s: nothing selected or fetched" % fault,
                srv.command_names())
        t.check(not os.path.exists(box) or os.path.getsize(box) == 0, "%s: nothing delivered" % fault)
        t.no_secrets(r.out + r.err, srv.user, srv.password, fault)
        if fault not in ("no-signature",):
            t.check("*" in [x.decode(errors="replace") for x in srv.received()],
                    "%s: the exchange was cancelled with \"*\"" % fault)

    # Channel binding that works.
    cases = (
        ("1.2", ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), "auto", "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,"),
        (None, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), "auto", "SCRAM-SHA-256-PLUS", "p=tls-exporter,,"),
        ("1.2", ("SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"), "auto", "SCRAM-SHA-1-PLUS", "p=tls-server-end-point,,"),
        (None, ("SCRAM-SHA-256",), "auto", "SCRAM-SHA-256", "y,,"),
        (None, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), "scram-sha-256", "SCRAM-SHA-256", "n,,"),
        (None, ("SCRAM-SHA-1-PLUS", "SCRAM-SHA-256"), "auto", "SCRAM-SHA-256", "n,,"),
        (None, ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"), "scram-sha-1", "SCRAM-SHA-1", "n,,"),
    )
    for tls_max, mechs, auth, want_mech, want_gs2 in cases:
        for sasl_ir in (True, False):
            what = "%s offered over TLS %s, auth = %s, %s SASL-IR" % (
                "/".join(mechs), tls_max or "1.3", auth, "with" if sasl_ir else "without")
            srv = t.fake(tls="implicit", auth_mechs=mechs, messages=[msg], tls_max=tls_max, sasl_ir=sasl_ir)
            box = t.path("ok.mbox")
            r = t.run(["-v", "-v"], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=box, auth=auth)}))
            srv.stop()
            t.exit_code(r, h.EX_OK, what)
            t.eq([(m, g, ok) for m, g, ok, _ in srv.scram_results], [(want_mech, want_gs2, True)],
                 "%s: mechanism, GS2 header, server satisfied" % what)
            t.no_secrets(r.out + r.err, srv.user, srv.password, what)
    t.eq(len(h.parse_mbox(h.read_file(t.path("ok.mbox")))), 2 * len(cases), "every good login fetched")

    # Without TLS (tls = none, allow_plaintext = yes): SCRAM is chosen over
    # PLAIN, with "n" (no channel to bind to); PLAIN only when nothing
    # better is offered.
    for mechs, want in ((("PLAIN", "SCRAM-SHA-256"), "SCRAM-SHA-256"), (("PLAIN",), "PLAIN")):
        srv = t.fake(tls="none", starttls="absent", auth_mechs=mechs, messages=[msg])
        r = t.run(["-v", "-v"], h.config({"acct": h.fake_keys(srv, tls="none", allow_plaintext="yes", deliver="mbox",
                                                              mbox=t.path("plain.mbox"))}))
        srv.stop()
        what = "no TLS, %s offered" % "/".join(mechs)
        t.exit_code(r, h.EX_OK, what)
        t.check(re.search(r"IMAP> \S+ AUTHENTICATE %s " % want, r.stderr) is not None, "%s: %s used" % (what, want),
                r.stderr)
        if want.startswith("SCRAM"):
            t.eq([(m, g, ok) for m, g, ok, _ in srv.scram_results], [(want, "n,,", True)], "%s: GS2 header n" % what)

    # LOGINDISABLED, and nothing this account can use.
    srv = t.fake(tls="implicit", auth_mechs=("GSSAPI", "XOAUTH2"), logindisabled=True, messages=[msg])
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=t.path("x.mbox"))}))
    srv.stop()
    t.exit_code(r, h.EX_AUTH, "LOGINDISABLED with no usable mechanism")
    t.check("server disabled LOGIN (LOGINDISABLED) and offers no mechanism this account can use "
            "(it offers: GSSAPI XOAUTH2)" in r.stderr, "the error says what the server offers", r.stderr)
    t.check(not srv.saw("LOGIN") and not srv.saw("AUTHENTICATE"), "nothing sent", srv.command_names())


h.main(test)
