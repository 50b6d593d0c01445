#!/usr/bin/env python3
"""keep = no: delivered messages are removed from the server with
\\Deleted + UID EXPUNGE, while a message that another client had marked
\\Deleted (and \\Seen, so it is not fetched) survives: a plain EXPUNGE would
have removed it.  Also --delete and -k override the config."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    dv = t.dovecot()
    msgs = h.sample_messages(3)
    uids = dv.append_many("alice", "INBOX", msgs)
    other = dv.append("alice", "INBOX", h.sample_message(20), flags=("\\Seen", "\\Deleted"))
    read = dv.append("alice", "INBOX", h.sample_message(21), flags=("\\Seen",))

    mbox = t.path("inbox.mbox")
    keys = h.dovecot_keys(dv, deliver="mbox", mbox=mbox, keep="no")
    r = t.run([], h.config({"acct": keys}))
    t.exit_code(r, h.EX_OK, "keep = no run")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "all messages delivered")
    fl = dv.flags("alice")
    for u in uids:
        t.check(u not in fl, "delivered UID %d removed from the server" % u, fl)
    t.eq(fl.get(other), {"\\Seen", "\\Deleted"},
         "another client's \\Deleted message is still there (UID EXPUNGE, not EXPUNGE)")
    t.eq(fl.get(read), {"\\Seen"}, "an already read message is untouched")

    # --delete overrides keep = yes
    more = [h.sample_message(30), h.sample_message(31, 5000)]
    more_uids = dv.append_many("alice", "INBOX", more)
    keys["keep"] = "yes"
    r = t.run(["--delete"], h.config({"acct": keys}))
    t.exit_code(r, h.EX_OK, "--delete run")
    fl = dv.flags("alice")
    t.check(not any(u in fl for u in more_uids), "--delete removed the delivered messages", fl)
    t.eq(fl.get(other), {"\\Seen", "\\Deleted"}, "--delete still spares the other \\Deleted message")

    # -k overrides keep = no
    last = h.sample_message(40)
    last_uid = dv.append("alice", "INBOX", last)
    keys["keep"] = "no"
    r = t.run(["-k"], h.config({"acct": keys}))
    t.exit_code(r, h.EX_OK, "-k run")
    t.eq(dv.flags("alice").get(last_uid), {"\\Seen"}, "-k keeps the message and marks it \\Seen")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs + more + [last], "mbox holds everything once")


h.main(test)
