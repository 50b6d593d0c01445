#!/usr/bin/env python3
"""Fetch unseen mail from Dovecot into an mbox.

Every message arrives byte-exact (CRLF -> LF, mboxrd quoting undone), all of
them are \\Seen on the server afterwards with their other flags kept, mail
that was already \\Seen and another user's mail are left alone, and a second
run finds nothing (exit 1, or 0 with --no-mail-ok).  The config sets mbox
and not deliver: an mbox given is where the mail goes."""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    dv = t.dovecot()
    msgs = h.sample_messages(5)
    uids = dv.append_many("alice", "INBOX", msgs)
    flagged = h.sample_message(6, 1200)
    uid_flagged = dv.append("alice", "INBOX", flagged, flags=("\\Flagged",))
    old = h.sample_message(7, 600)
    uid_old = dv.append("alice", "INBOX", old, flags=("\\Seen",))
    dv.append("bob", "INBOX", h.sample_message(8))
    want = msgs + [flagged]

    mbox = t.path("mail", "inbox.mbox")
    os.makedirs(os.path.dirname(mbox))
    cfg = h.config({"acct": h.dovecot_keys(dv, mbox=mbox)})

    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "first run")
    data = h.read_file(mbox)
    t.messages_equal(h.parse_mbox(data), want, "mbox holds every unseen message, in UID order")
    froms = h.mbox_from_lines(data)
    t.check(all(re.match(rb"^From \S+ .*\d\d:\d\d:\d\d \d{4}$", f) for f in froms),
            "From_ lines look like `From sender date`", froms)
    t.check(b"\r" not in data, "no CR left in the mbox")

    fl = dv.flags("alice")
    for u in uids:
        t.eq(fl.get(u), {"\\Seen"}, "UID %d is \\Seen and nothing else" % u)
    t.eq(fl.get(uid_flagged), {"\\Seen", "\\Flagged"}, "\\Flagged kept, \\Seen added (+FLAGS, not FLAGS)")
    t.eq(fl.get(uid_old), {"\\Seen"}, "message that was already seen left alone")
    t.eq(len(fl), 7, "nothing expunged with keep = yes (default)")
    t.eq(dv.flags("bob"), {1: set()}, "bob's mail untouched")

    r = t.run([], cfg)
    t.exit_code(r, h.EX_NOMAIL, "second run: no new mail")
    t.eq(h.read_file(mbox), data, "second run leaves the mbox as it was")

    r = t.run(["--no-mail-ok"], cfg)
    t.exit_code(r, h.EX_OK, "--no-mail-ok: no mail is exit 0")
    t.eq(h.read_file(mbox), data, "--no-mail-ok run leaves the mbox as it was")


h.main(test)
