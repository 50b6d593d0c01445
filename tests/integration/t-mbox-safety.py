#!/usr/bin/env python3
"""The mbox sink's promises (scripted fake server, run under strace where
a system call must be watched or made to fail):
- a new mbox: its directory is fsynced before any UID STORE goes out, so
  a crash cannot lose the file that holds mail the server marked;
- the locks (dotlock and fcntl) are not held while mailfetch waits for
  the server between two messages: a mail reader can get in;
- a full disk (writev fails with ENOSPC) is a temporary failure: after
  the first message fails, nothing more is tried this run (one error,
  not one per message), everything stays unseen, exit 10;
- an mbox that belongs to another user, even mode 0666, is refused
  (exit 10) and nothing is fetched from it (needs root to chown)."""

import fcntl
import os
import re
import shutil
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h



def test(t):
    if shutil.which("strace") is None:
        raise h.Skip("strace is not installed")
    msgs = [h.sample_message(i + 1, 700 + 300 * i) for i in range(5)]

    # 1. A new mbox in a directory of its own: fsync of that directory
    #    before the first UID STORE is written to the socket.
    d = t.mkdir("newdir")
    mbox = os.path.join(d, "inbox.mbox")
    srv = t.fake(tls="none", messages=msgs)
    wrapper, log = t.strace_wrapper("dirsync", "-e trace=openat,fsync,write,writev,sendto,sendmsg -s 64")
    keys = h.fake_keys(srv, tls="none", allow_plaintext="yes", deliver="mbox", mbox=mbox)
    r = t.run([], h.config({"acct": keys}), binary=wrapper)
    srv.stop()
    t.exit_code(r, h.EX_OK, "fetch into a new mbox")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "all delivered")
    lines = h.read_file(log).decode(errors="replace").splitlines()
    dirfds = set()
    synced_at = store_at = None
    for i, line in enumerate(lines):
        m = re.search(r'openat\(AT_FDCWD, "%s", [^)]*O_DIRECTORY[^)]*\) = (\d+)' % re.escape(d), line)
        if m:
            dirfds.add(m.group(1))
        m = re.search(r"fsync\((\d+)\)\s+= 0", line)
        if m and m.group(1) in dirfds and synced_at is None:
            synced_at = i
        if "UID STORE" in line and store_at is None:
            store_at = i
    t.check(store_at is not None, "the trace shows the UID STORE")
    t.check(synced_at is not None and store_at is not None and synced_at < store_at,
            "the mbox's directory was fsynced before the UID STORE", (synced_at, store_at))

    # 2. No lock held across a wait for the server: the server pauses
    #    before the third message; meanwhile a "mail reader" must find
    #    neither the dotlock nor the fcntl lock taken.
    mbox = t.path("paused.mbox")
    seen = {}

    def pause_before_third(sess, m):
        if m.uid != 3:
            return
        time.sleep(1.0)  # the client has written messages 1 and 2 by now
        seen["dotlock"] = os.path.exists(mbox + ".lock")
        try:
            with open(mbox, "ab") as f:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.lockf(f, fcntl.LOCK_UN)
            seen["fcntl"] = False
        except OSError:
            seen["fcntl"] = True
        time.sleep(0.5)

    srv = t.fake(tls="implicit", messages=msgs, on_fetch_message=pause_before_third)
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_OK, "fetch with a pause before the third message")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "all delivered")
    t.eq(seen, {"dotlock": False, "fcntl": False}, "no lock held while waiting for the server")

    # 2b. The fcntl lock is still held while a message is written (mailfetch
    #     reads the mbox too, and closing any other descriptor of the file
    #     would drop the lock): every writev is held up for 2 s, and meanwhile
    #     another process must not get the fcntl lock.
    mbox = t.path("held.mbox")
    with open(mbox, "wb") as f:
        f.write(b"From someone Mon Jan  1 00:00:00 2024\nSubject: old\n\nold\n\n")
    srv = t.fake(tls="implicit", messages=msgs[:1])
    wrapper, log = t.strace_wrapper("slowwrite", "-e trace=writev -e inject=writev:delay_enter=2000000")
    run = t.start([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}), binary=wrapper)
    deadline = time.time() + 20
    while not os.path.exists(mbox + ".lock") and time.time() < deadline and not run.poll():
        time.sleep(0.01)
    time.sleep(0.8)  # inside the held-up writev
    try:
        with open(mbox, "ab") as f:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(f, fcntl.LOCK_UN)
        got_lock = True
    except OSError:
        got_lock = False
    r = run.wait()
    srv.stop()
    t.exit_code(r, h.EX_OK, "a slow write into an mbox with mail in it")
    t.check(not got_lock, "the fcntl lock is held while the message is written")

    # 3. Disk full: the first failure stops deliveries for the run.
    mbox = t.path("full.mbox")
    srv = t.fake(tls="implicit", messages=msgs)
    wrapper, log = t.strace_wrapper("enospc", "-e trace=writev -e inject=writev:error=ENOSPC")
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}), binary=wrapper)
    srv.stop()
    t.exit_code(r, h.EX_DELIVERY, "disk full")
    failed = [l for l in r.stderr.splitlines() if "not delivered" in l]
    t.eq(len(failed), 1, "one message tried and failed, not one error per message", r.stderr)
    t.check("delivering nothing more this run" in r.stderr, "the run says it stopped delivering", r.stderr)
    t.check(not srv.saw("STORE"), "nothing marked")
    t.eq(h.read_file(mbox), b"", "nothing left in the mbox")

    # 4. Someone else's mbox, world-writable: refused.
    if os.geteuid() != 0:
        t.log("note: not root, cannot chown an mbox to another user: part 4 not run")
        return
    mbox = t.path("other.mbox")
    with open(mbox, "wb"):
        pass
    os.chown(mbox, 65534, 65534)
    os.chmod(mbox, 0o666)
    srv = t.fake(tls="implicit", messages=msgs)
    r = t.run([], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=mbox)}))
    srv.stop()
    t.exit_code(r, h.EX_DELIVERY, "an mbox of another user")
    t.check("belongs to another user" in r.stderr and mbox in r.stderr, "the error says whose it is", r.stderr)
    t.eq(h.read_file(mbox), b"", "nothing appended to it")
    t.check(not srv.saw("FETCH") and not srv.saw("STORE"), "nothing fetched or marked", srv.command_names())


h.main(test)
