#!/usr/bin/env python3
"""A 25 MB message arrives byte-exact in an mbox (and through an MDA) while
the peak RSS of the mailfetch process stays under 16 MB."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

LIMIT_KIB = 16 * 1024


def test(t):
    dv = t.dovecot()
    big = h.big_message(25 * 1024 * 1024)
    small = h.sample_message(1, 2000)
    dv.append_many("alice", "INBOX", [small, big])
    sanitized = h.binary_is_sanitized()
    if sanitized:
        t.log("note: sanitizer build, the RSS limit is not checked")

    mbox = t.path("inbox.mbox")
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox)}), timeout=120)
    t.exit_code(r, h.EX_OK, "25 MB into an mbox")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), [small, big], "mbox byte-exact")
    t.log("peak RSS (mbox): %d KiB" % r.maxrss_kib)
    if not sanitized:
        t.check(r.maxrss_kib < LIMIT_KIB, "mbox: peak RSS %d KiB < %d KiB" % (r.maxrss_kib, LIMIT_KIB))
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "both \\Seen")

    # The same through an MDA (the MDA is `cat`, the limit is mailfetch's).
    dv.append("alice", "INBOX", big)
    out = t.path("mda.out")
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda="cat > '%s'" % out)}), timeout=120)
    t.exit_code(r, h.EX_OK, "25 MB through an MDA")
    t.messages_equal([h.read_file(out)], [big], "MDA got the message byte-exact")
    t.log("peak RSS (mda): %d KiB" % r.maxrss_kib)
    if not sanitized:
        t.check(r.maxrss_kib < LIMIT_KIB, "mda: peak RSS %d KiB < %d KiB" % (r.maxrss_kib, LIMIT_KIB))


h.main(test)
