#!/usr/bin/env python3
"""The server drops the connection in the middle of a message literal
(`* 1 FETCH (UID 1 BODY[] {5000}` + 2000 bytes + close): nothing is
delivered (not even a partial message), nothing is marked (no STORE or
EXPUNGE on the wire), and the exit code is a documented failure (4 or 7)."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

MDA = """#!/bin/sh
cat > '%s'/msg.$$
"""


def message_of_crlf_size(n, size):
    """A sample message whose CRLF form is exactly `size` bytes."""
    m = h.sample_message(n, size - 400)
    pad = size - len(h.crlf(m))
    # pad with one more body line (x's + CRLF)
    return m + b"x" * (pad - 2) + b"\n"


def test(t):
    msgs = [message_of_crlf_size(1, 5000), h.sample_message(2, 800)]
    assert len(h.crlf(msgs[0])) == 5000

    out = t.mkdir("mda-out")
    mda = t.path("mda.sh")
    with open(mda, "w") as f:
        f.write(MDA % out)
    os.chmod(mda, 0o755)
    mbox = t.path("inbox.mbox")

    for sink, keys in (("mbox", {"deliver": "mbox", "mbox": mbox}),
                       ("mda", {"deliver": "mda", "mda": mda})):
        for keep in ("yes", "no"):
            what = "%s, keep = %s" % (sink, keep)
            srv = t.fake(tls="implicit", messages=msgs, fetch_fault="drop-mid-literal", drop_after=2000)
            r = t.run([], h.config({"acct": h.fake_keys(srv, keep=keep, **keys)}))
            srv.stop()
            t.exit_code(r, {h.EX_PROTO, h.EX_SERVER}, what)
            t.check(srv.saw("FETCH"), "%s: the client did fetch" % what, srv.command_names())
            t.check(not srv.saw("STORE") and not srv.saw("EXPUNGE"),
                    "%s: no STORE/EXPUNGE on the wire" % what, srv.command_names())
            t.eq(srv.flags(), {1: set(), 2: set()}, "%s: flags untouched" % what)
            t.check(any(k == "fault" for k in srv.kinds()), "%s: the fault was injected" % what)

    t.eq(h.read_file(mbox), b"", "nothing written to the mbox")
    t.eq(os.listdir(out), [], "the MDA never got a message")


h.main(test)
