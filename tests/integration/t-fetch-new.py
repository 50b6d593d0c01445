#!/usr/bin/env python3
"""fetch = new and delete_after, against a real Dovecot:
- fetch = new fetches every message not fetched before, whatever its
  \\Seen flag (mail read on a phone is still fetched), and leaves the
  flags as they were (it sets no \\Seen); mail whose \\Seen another client
  clears later is not fetched again; a new message is; the history file
  holds UID ranges, not one line per message;
- a folder rebuilt on the server (a new UIDVALIDITY) gives all its
  messages again, with a warning naming the old and the new value;
- killed at random points with SIGKILL, fetch = new into an mbox still
  delivers every message exactly once;
- delete_after = N (keep = yes) deletes on the server the messages this
  account delivered more than N days ago (UID EXPUNGE of just those), and
  never a message it did not deliver."""

import os
import random
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def imap_store(dv, user, folder, uid, op, flags):
    c = dv.imap(user)
    try:
        c.select(dv._q(folder))
        typ, data = c.uid("STORE", str(uid), op, flags)
        assert typ == "OK", data
    finally:
        c.logout()


def history_path(t, account):
    return os.path.join(t.dir, "home", ".local", "state", "mailfetch", "%s.history" % account)


def test(t):
    dv = t.dovecot()
    msgs = [h.sample_message(i + 1, 700 + 50 * i) for i in range(4)]
    u = dv.append_many("alice", "INBOX", msgs)
    imap_store(dv, "alice", "INBOX", u[1], "+FLAGS", "(\\Seen)")  # read on a phone
    before = dv.flags("alice")
    mbox = t.path("new.mbox")
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox, fetch="new")})

    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "fetch = new, first run")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "every message, \\Seen or not")
    t.eq(dv.flags("alice"), before, "no flag changed on the server")
    hist = h.read_file(history_path(t, "acct")).decode()
    t.check(re.search(r"(?m)^R %d %d \d+$" % (u[0], u[-1]), hist) is not None,
            "the history is one range", hist)

    imap_store(dv, "alice", "INBOX", u[1], "-FLAGS", "(\\Seen)")  # another client clears \Seen
    r = t.run([], cfg)
    t.exit_code(r, h.EX_NOMAIL, "second run: nothing new")
    extra = h.sample_message(10, 900)
    u5 = dv.append("alice", "INBOX", extra)
    r = t.run(["-v"], cfg)
    t.exit_code(r, h.EX_OK, "a new message")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs + [extra], "only the new one is added")
    t.eq(dv.flags("alice").get(u5), set(), "and it stays unseen")

    # A rebuilt folder: new UIDVALIDITY, everything again.
    work = [h.sample_message(20 + i, 600) for i in range(2)]
    dv.create("alice", "Work")
    dv.append_many("alice", "Work", work)
    wbox = t.path("work.mbox")
    wcfg = h.config({"w": h.dovecot_keys(dv, deliver="mbox", mbox=wbox, fetch="new", folders="Work")})
    r = t.run([], wcfg)
    t.exit_code(r, h.EX_OK, "Work, first run")
    old = re.search(r"(?m)^F (\d+) Work$", h.read_file(history_path(t, "w")).decode())
    c = dv.imap("alice")
    c.delete(dv._q("Work"))
    c.logout()
    time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the time
    dv.create("alice", "Work")
    dv.append_many("alice", "Work", work)
    r = t.run([], wcfg)
    t.exit_code(r, h.EX_OK, "Work rebuilt")
    t.messages_equal(h.parse_mbox(h.read_file(wbox)), work + work, "all of it again")
    new = re.search(r"(?m)^F (\d+) Work$", h.read_file(history_path(t, "w")).decode())
    t.check(old and new and old.group(1) != new.group(1) and
            ("from %s to %s" % (old.group(1), new.group(1))) in r.stderr,
            "a warning names the old and the new UIDVALIDITY", r.stderr)

    # Kills at random points, then a clean run: each message once.
    many = [h.sample_message(100 + i, (i * 7919) % 30000 + 400) for i in range(300)]
    dv.create("alice", "Bulk")
    dv.append_many("alice", "Bulk", many)
    bbox = t.path("bulk.mbox")
    bcfg = h.config({"b": h.dovecot_keys(dv, deliver="mbox", mbox=bbox, fetch="new", folders="Bulk")})
    rnd = random.Random(8)
    kills = 0
    for i in range(8):
        size0 = len(h.read_file(bbox))
        run = t.start([], bcfg)
        grow = rnd.uniform(1, 1500000)
        deadline = time.time() + 20
        while not run.poll() and time.time() < deadline and len(h.read_file(bbox)) - size0 < grow:
            time.sleep(0.002)
        if not run.poll():
            try:
                run.kill()
                kills += 1
            except ProcessLookupError:
                pass
        run.wait()
    r = t.run([], bcfg)
    t.exit_code(r, {h.EX_OK, h.EX_NOMAIL}, "the clean run after %d kills" % kills)
    t.check(kills >= 1, "runs were killed (%d)" % kills)
    got = h.parse_mbox(h.read_file(bbox))
    t.eq(len(got), len(many), "as many messages as the folder holds")
    t.messages_equal(sorted(got), sorted(many), "each exactly once")

    # Killed twice while an MDA works (after marking what the killed run
    # before it delivered): every message still comes exactly once.
    dv.create("alice", "Twice")
    tmsgs = [h.sample_message(300 + i, 600) for i in range(6)]
    dv.append_many("alice", "Twice", tmsgs)
    out, cnt, stall = t.path("twice.out"), t.path("twice.count"), t.path("twice.stall")
    with open(cnt, "w") as f:
        f.write("0")
    mda = t.path("twice-mda.sh")
    with open(mda, "w") as f:
        f.write('#!/bin/sh\nc=$(cat %s)\nif [ -e %s ] && [ "$c" -ge "$(cat %s)" ]; then sleep 100; fi\n'
                'cat >> %s; echo "=====" >> %s; echo $((c+1)) > %s\n' % (cnt, stall, stall, out, out, cnt))
    os.chmod(mda, 0o755)
    tcfg = h.config({"t": h.dovecot_keys(dv, deliver="mda", mda=mda, fetch="new", folders="Twice")})
    for at in (2, 3):
        with open(stall, "w") as f:
            f.write(str(at))
        run = t.start([], tcfg)
        deadline = time.time() + 20
        while int(h.read_file(cnt) or b"0") < at and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(1.0)
        run.kill()
        run.wait()
    os.unlink(stall)
    r = t.run([], tcfg)
    t.exit_code(r, h.EX_OK, "the run after two kills")
    t.eq(h.read_file(out).decode().count("====="), 6, "six messages, each delivered once")

    # delete_after = 36500 is more days than have passed since 1970: nothing
    # may be deleted (the day count must not wrap).
    dv.create("alice", "Old")
    ou = dv.append_many("alice", "Old", [h.sample_message(500, 500)])
    ocfg = h.config({"o": h.dovecot_keys(dv, deliver="mbox", mbox=t.path("old.mbox"), folders="Old",
                                         delete_after="36500")})
    t.run([], ocfg)
    t.run([], ocfg)
    t.eq(dv.uids("alice", "Old"), ou, "delete_after = 36500 deletes nothing today")

    # delete_after: only what this account delivered, once old enough.
    dv.create("alice", "Keep")
    mine = [h.sample_message(400 + i, 500) for i in range(3)]
    ku = dv.append_many("alice", "Keep", mine)
    kbox = t.path("keep.mbox")
    kcfg = h.config({"k": h.dovecot_keys(dv, deliver="mbox", mbox=kbox, folders="Keep", delete_after="2")})
    r = t.run([], kcfg)
    t.exit_code(r, h.EX_OK, "delete_after: first run delivers")
    t.eq(dv.uids("alice", "Keep"), ku, "nothing deleted yet")
    theirs = dv.append("alice", "Keep", h.sample_message(450, 500), flags=("\\Seen",))  # not ours to delete
    # Make the deliveries three days old.
    path = history_path(t, "k")
    text = h.read_file(path).decode()
    text = re.sub(r"(?m)^(R \d+ \d+ )(\d+)$", lambda m: m.group(1) + str(int(m.group(2)) - 3), text)
    with open(path, "w") as f:
        f.write(text)
    r = t.run(["-v"], kcfg)
    t.check(r.code in (h.EX_OK, h.EX_NOMAIL), "delete_after: second run", r)
    t.eq(dv.uids("alice", "Keep"), [theirs], "the three delivered ones are gone, the other one stays")
    t.check("deleted on the server" in r.stderr, "-v says so", r.stderr)
    t.eq(len(h.parse_mbox(h.read_file(kbox))), 3, "nothing delivered twice")


h.main(test)
