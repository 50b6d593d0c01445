#!/usr/bin/env python3
"""A full disk while writing the mbox (simulated with a file size limit,
RLIMIT_FSIZE, so no root is needed): the message that does not fit is not
left half-written (the mbox is truncated back to exactly what it held),
it stays unseen on the server, the others are delivered and marked, the
exit code is 10 with a one-line error naming the account and the mbox;
the next run without the limit delivers it, with no duplicates."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

LIMIT_BLOCKS = 16  # ulimit -f counts 512-byte blocks: 8 KiB


def test(t):
    dv = t.dovecot()
    m1 = h.sample_message(1, 900)
    m2 = h.sample_message(2, 20000)   # cannot fit under the limit
    m3 = h.sample_message(3, 900)
    u1, u2, u3 = dv.append_many("alice", "INBOX", [m1, m2, m3])

    # An mbox that already holds one message: it must survive untouched.
    old = b"From: old@example.org\nSubject: old mail\n\nAlready here before the run.\n"
    mbox = t.path("inbox.mbox")
    with open(mbox, "wb") as f:
        f.write(b"From old@example.org Thu Jan  1 00:00:00 2024\n" + old + b"\n")
    before = h.read_file(mbox)

    wrapper = t.path("limited-mailfetch")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nulimit -f %d || exit 99\nexec '%s' \"$@\"\n" % (LIMIT_BLOCKS, h.mailfetch_binary()))
    os.chmod(wrapper, 0o755)

    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox)})
    r = t.run([], cfg, binary=wrapper)
    t.exit_code(r, h.EX_DELIVERY, "run with the disk full for one message")
    t.check(len(h.read_file(mbox)) <= LIMIT_BLOCKS * 512, "the limit was in force")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), [old, m1, m3], "old mail kept, m1 and m3 appended whole")
    t.check(h.read_file(mbox).startswith(before), "the mbox's old content is untouched")
    errs = [l for l in r.stderr.splitlines() if "UID %d" % u2 in l]
    t.check(len(errs) == 1 and "acct (alice@" in errs[0] and mbox in errs[0],
            "one error line naming the account, the UID and the mbox", r.stderr)
    fl = dv.flags("alice")
    t.eq((fl.get(u1), fl.get(u2), fl.get(u3)), ({"\\Seen"}, set(), {"\\Seen"}),
         "delivered ones \\Seen, the one that did not fit unseen")

    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "next run with room on the disk")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), [old, m1, m3, m2], "m2 delivered once, nothing twice")
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "all \\Seen now")


h.main(test)
