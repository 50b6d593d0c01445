#!/usr/bin/env python3
"""Unsolicited responses in the middle of a fetch (fake server): before
answering UID FETCH the server expunges another message (`* 1 EXPUNGE`,
so every sequence number shifts), announces a new one (`* N EXISTS`) and
sends an unrelated flag update (`* 1 FETCH (FLAGS ...)`).  A client that
matches by UID delivers exactly the messages it asked for, byte-exact,
each once, and marks exactly those."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    seen = h.sample_message(1, 700)
    m2, m3 = h.sample_message(2, 3000), h.sample_message(3, 1200)
    late = h.sample_message(4, 900)
    state = {"done": False}

    def meddling_fetch(sess, tag, args):
        srv = sess.srv
        if not state["done"]:
            state["done"] = True
            with srv.lock:
                gone = srv.mailbox.pop(0)  # UID 1, the read one
            srv.add(late)
            sess.send(b"* 1 EXPUNGE\r\n* %d EXISTS\r\n* 1 FETCH (FLAGS (\\Flagged))\r\n" % len(srv.mailbox))
            srv._event(sess.id, "fault", "expunged UID %d, added UID %d" % (gone.uid, srv.next_uid - 1))
        return sess.cmd_uid_fetch(tag, args)

    srv = t.fake(tls="implicit", messages=[(seen, ("\\Seen",)), m2, m3],
                 handlers={"UID FETCH": meddling_fetch})
    mbox = t.path("inbox.mbox")
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "fetch with EXPUNGE/EXISTS/FETCH in between")
    t.check(state["done"], "the server did meddle")
    got = h.parse_mbox(h.read_file(mbox))
    t.check(got[:2] == [m2, m3], "UIDs 2 and 3 delivered first, byte-exact, in order",
            "got %d messages" % len(got))
    t.check(len(got) in (2, 3) and (len(got) == 2 or got[2] == late),
            "nothing else delivered (at most the new UID 4, once)", "got %d messages" % len(got))
    fl = srv.flags()
    t.eq(set(fl), {2, 3, 4}, "server: UID 1 gone, 2, 3, 4 there")
    t.check("\\Seen" in fl[2] and "\\Seen" in fl[3], "UIDs 2 and 3 marked \\Seen", fl)
    t.eq("\\Seen" in fl[4], len(got) == 3, "UID 4 marked if and only if it was delivered", fl)
    t.check(all("\\Deleted" not in f for f in fl.values()), "nothing marked \\Deleted", fl)


h.main(test)
