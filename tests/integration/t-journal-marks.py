#!/usr/bin/env python3
"""Marks from the state journal (scripted fake server):
- a journal far larger than one pipeline (70,000 scattered UIDs, which no
  UID set compresses: more than 64 UID STORE commands) is marked a few
  commands at a time, reading replies as they come: every message ends
  \\Seen, none is fetched again, exit 1 (no new mail);
- the server refuses the STORE for journaled UIDs: that is reported
  (exit 7) and they stay in the journal, but new mail in the folder is
  still fetched, delivered once and marked;
- a journal that cannot be read stops the account before it connects
  (exit 23): going on would deliver again what it records."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

MANY = 70000
FIRST_UID = 10000001  # eight digits each: about 900 UIDs fit in one command


def state_path(t, account):
    return os.path.join(t.dir, "home", ".local", "state", "mailfetch", "%s.state" % account)


def write_journal(t, account, srv, uids, folder="INBOX"):
    path = state_path(t, account)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("mailfetch-state 1 %s@127.0.0.1\n" % srv.user)
        for u in uids:
            f.write("%d %d %s\n" % (srv.uidvalidity, u, folder))


def journal_uids(t, account):
    text = h.read_file(state_path(t, account)).decode()
    return sorted(int(line.split()[1]) for line in text.splitlines()[1:] if line and line[0].isdigit())


def test(t):
    # 1. A journal of MANY scattered UIDs, all delivered by an earlier run.
    srv = t.fake(tls="implicit")
    srv.next_uid = FIRST_UID
    uids = []
    for i in range(MANY):
        uids.append(srv.add(b"Subject: %d\n\nbody\n" % i))
        srv.next_uid += 1  # leave a gap: no ranges
    write_journal(t, "big", srv, uids)
    mbox = t.path("big.mbox")
    r = t.run([], h.config({"big": h.fake_keys(srv, deliver="mbox", mbox=mbox)}), timeout=300)
    srv.stop()
    t.exit_code(r, h.EX_NOMAIL, "a huge journal is only marked")
    t.check("pipeline full" not in r.stderr, "no internal error", r.stderr[-2000:])
    stores = [n for n in srv.command_names() if n == "UID STORE"]
    t.check(len(stores) > 64, "more marks than one pipeline holds (%d UID STORE commands)" % len(stores))
    t.check(not srv.saw("FETCH"), "nothing fetched again")
    unseen = [u for u, f in srv.flags().items() if "\\Seen" not in f]
    t.eq(len(unseen), 0, "every journaled message is \\Seen", unseen[:5])
    t.check(not os.path.exists(state_path(t, "big")), "the journal is empty and gone")
    t.eq(h.read_file(mbox), b"", "nothing delivered")

    # 2. Marks for journaled UIDs refused: new mail still comes.
    old = [h.sample_message(1, 700), h.sample_message(2, 900)]
    new = [h.sample_message(3, 1100), h.sample_message(4, 1300)]

    def refuse_old(sess, tag, args):
        uidset = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        nums = set()
        for part in uidset.split(","):
            a, _, b = part.partition(":")
            nums.update(range(int(a), int(b or a) + 1))
        if nums & {1, 2}:
            sess.send("%s NO [SERVERBUG] cannot store flags on those\r\n" % tag)
            return None
        return sess.cmd_uid_store(tag, args)

    srv = t.fake(tls="implicit", messages=old + new, handlers={"UID STORE": refuse_old})
    write_journal(t, "refused", srv, [1, 2])
    box = t.path("refused.mbox")
    r = t.run(["-v"], h.config({"refused": h.fake_keys(srv, deliver="mbox", mbox=box)}))
    srv.stop()
    t.exit_code(r, h.EX_SERVER, "refused marks are a server error")
    t.messages_equal(h.parse_mbox(h.read_file(box)), new, "the new messages are delivered, the old ones not again")
    t.eq(srv.seen(), [3, 4], "the new ones are marked")
    t.eq(journal_uids(t, "refused"), [1, 2], "the refused ones stay in the journal")
    t.check("could not be marked" in r.stderr, "the refusal is reported", r.stderr)

    # 3. A journal that cannot be read: nothing is fetched (what it holds
    #    would be delivered again), exit 23 naming the file.
    srv = t.fake(tls="implicit", messages=new)
    path = state_path(t, "unreadable")
    os.symlink(os.path.basename(path), path)  # a loop: ELOOP, whoever runs it
    box = t.path("unreadable.mbox")
    r = t.run([], h.config({"unreadable": h.fake_keys(srv, deliver="mbox", mbox=box)}))
    srv.stop()
    t.exit_code(r, h.EX_INTERNAL, "an unreadable journal")
    t.check(path in r.stderr, "the error names the journal", r.stderr)
    t.check(not srv.saw("FETCH") and not srv.saw("LOGIN") and not srv.saw("AUTHENTICATE"),
            "nothing fetched, not even logged in", srv.command_names())
    t.check(os.path.islink(path), "the journal is left as it was")


h.main(test)
