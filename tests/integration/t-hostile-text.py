#!/usr/bin/env python3
"""Server text and MDA output reach the terminal only escaped: a NO reply
to AUTHENTICATE or SELECT whose text holds ESC [2J (clear the screen), BEL,
DEL and a bare CR followed by a forged "... delivered" line, and an MDA
that writes the same to its stderr, leave no control byte on mailfetch's
stderr but the newline ending each line; the ESC shows as \\x1b, and no
line starts with the forged text."""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

FORGED = b"mailfetch: acct: INBOX: UID 1, 800 bytes: delivered"
HOSTILE = b"\x1b[2J\x07\x7fsorry\r" + FORGED

MDA = b"""#!/bin/sh
printf '\\033[2J\\007\\177mda says\\r%s\\n' >&2
cat > '%s'/msg.$$
"""


def refuse(sess, tag, args):
    sess.send(tag.encode() + b" NO " + HOSTILE + b"\r\n")


def check_clean(t, r, what):
    bad = sorted(set(b for b in r.err if (b < 0x20 and b != 0x0a) or b == 0x7f))
    t.check(not bad, "%s: no control byte on stderr but the line ends" % what,
            "found %s in %r" % (["0x%02x" % b for b in bad], r.err))
    t.check(b"\\x1b[2J\\x07\\x7f" in r.err and b"\\x0d" in r.err,
            "%s: ESC, BEL, DEL and CR shown escaped" % what, r.err)
    # A terminal starts over at a CR as at a newline.
    t.check(not any(line.startswith(FORGED) for line in re.split(rb"[\r\n]", r.err)),
            "%s: no line starts with the forged text" % what, r.err)


def test(t):
    msg = h.sample_message(1, 800)

    for cmd, want in (("AUTHENTICATE", h.EX_AUTH), ("SELECT", h.EX_SERVER)):
        what = "%s answered NO with hostile text" % cmd
        srv = t.fake(tls="implicit", messages=[msg], handlers={cmd: refuse})
        r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=t.path("x.mbox"))}))
        srv.stop()
        t.exit_code(r, want, what)
        t.check(b"sorry" in r.err, "%s: the server's text is shown" % what, r.err)
        check_clean(t, r, what)

    out = t.mkdir("mda-out")
    mda = t.path("mda.sh")
    with open(mda, "wb") as f:
        f.write(MDA % (FORGED.replace(b"%", b"%%"), out.encode()))
    os.chmod(mda, 0o755)
    what = "MDA writing hostile text to stderr"
    srv = t.fake(tls="implicit", messages=[msg])
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mda", mda=mda)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, what)
    t.check(b"mda: " in r.err and b"mda says" in r.err, "%s: the MDA's output is shown" % what, r.err)
    check_clean(t, r, what)
    t.eq(len(os.listdir(out)), 1, "%s: the message was delivered" % what)


h.main(test)
