#!/usr/bin/env python3
"""Server error replies and malformed replies (fake server):
LOGIN answered NO is exit 3; BYE instead of the message is exit 7 with
nothing delivered and nothing marked; NO on STORE is exit 7 (the message was
delivered, the server keeps it unseen); a literal size that is negative or
overflows 64 bits is exit 4 with nothing delivered; a BYE greeting fails; a
server that stops answering is exit 7 after `timeout` seconds; LOGINDISABLED
with no AUTH= mechanism is an authentication failure (exit 3) that says
what the server offers, without a LOGIN."""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def bad_literal(size_text):
    """A UID FETCH handler that answers with a bogus literal size, then
    waits for the client to hang up."""
    def handler(sess, tag, args):
        sess.send(b"* 1 FETCH (UID 1 BODY[] {" + size_text + b"}\r\nFrom: x\r\n\r\nbody\r\n)\r\n")
        sess.send(("%s OK FETCH completed\r\n" % tag).encode())
        sess.sock.settimeout(3)
        try:
            while sess.sock.recv(4096):
                pass
        except (OSError, socket.timeout):
            pass
        return "close"
    return handler


def test(t):
    msg = h.sample_message(1, 1500)

    def run(what, want, **fake):
        srv = t.fake(tls="implicit", messages=[msg], **fake)
        mbox = t.path(what.replace(" ", "-").replace("/", "") + ".mbox")
        r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox, timeout="10")}))
        srv.stop()
        t.exit_code(r, want, what)
        t.check("mailfetch: acct" in r.stderr, "%s: an error line names the account" % what, r.stderr)
        return srv, r, h.read_file(mbox)

    srv, r, box = run("LOGIN answered NO", h.EX_AUTH, login="no")
    t.check(srv.saw("LOGIN") or srv.saw("AUTHENTICATE"), "LOGIN NO: the client did try to log in")
    t.check(not srv.saw("SELECT"), "LOGIN NO: no SELECT after a failed login", srv.command_names())
    t.eq(box, b"", "LOGIN NO: nothing delivered")

    srv, r, box = run("BYE instead of FETCH data", h.EX_SERVER, fetch_fault="bye")
    t.check(not srv.saw("STORE"), "BYE: no STORE", srv.command_names())
    t.eq(box, b"", "BYE: nothing delivered")
    t.eq(srv.flags(), {1: set()}, "BYE: flags untouched")

    srv, r, box = run("STORE answered NO", h.EX_SERVER, store="no")
    t.check(srv.saw("STORE"), "STORE NO: the client did try to mark the message", srv.command_names())
    t.messages_equal(h.parse_mbox(box), [msg], "STORE NO: the message was delivered (once)")
    t.eq(srv.flags(), {1: set()}, "STORE NO: server still has it unseen")

    for size in (b"-1", b"18446744073709551616", b"99999999999999999999999"):
        what = "literal size %s" % size.decode()
        srv, r, box = run(what, h.EX_PROTO, handlers={"UID FETCH": bad_literal(size)})
        t.check(not srv.saw("STORE"), "%s: no STORE" % what, srv.command_names())
        t.eq(box, b"", "%s: nothing delivered" % what)

    srv, r, box = run("BYE greeting", {h.EX_CONNECT, h.EX_SERVER}, greeting="bye")
    t.check(not srv.saw("LOGIN"), "BYE greeting: no LOGIN")

    # A server that stops answering: `timeout` bounds the wait.
    def silent(sess, tag, args):
        time.sleep(6)
        return "close"
    srv = t.fake(tls="implicit", messages=[msg], handlers={"SELECT": silent})
    box = t.path("silent.mbox")
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=box, timeout="1")}))
    srv.stop()
    t.exit_code(r, h.EX_SERVER, "server silent after SELECT, timeout = 1")
    t.check(r.elapsed < 5, "timeout = 1: gave up after %.1fs" % r.elapsed)
    t.eq(h.read_file(box), b"", "silent server: nothing delivered")

    # Plaintext allowed, but the server says LOGINDISABLED and offers no
    # AUTH= mechanism: nothing to log in with.
    srv = t.fake(tls="none", starttls="absent", logindisabled_before_tls=True, messages=[msg])
    box = t.path("logindisabled.mbox")
    r = t.run([], h.config({"acct": h.fake_keys(srv, tls="none", allow_plaintext="yes",
                                                deliver="mbox", mbox=box)}))
    srv.stop()
    t.exit_code(r, h.EX_AUTH, "LOGINDISABLED and no AUTH= mechanism")
    t.check("server disabled LOGIN (LOGINDISABLED) and offers no mechanism this account can use (it offers: none)"
            in r.stderr, "LOGINDISABLED: the error says what the server offers", r.stderr)
    t.check(not srv.saw("LOGIN") and not srv.saw("AUTHENTICATE"), "LOGINDISABLED: no LOGIN sent",
            srv.command_names())


h.main(test)
