#!/usr/bin/env python3
"""--daemon against a real Dovecot (which offers IDLE and NOTIFY).

One mailfetch serves every account:
- two accounts with idle = yes (alice: INBOX and Lists; bob: INBOX), a
  third polled only on its timer (an hour) and a fourth with a wrong
  password; mail APPENDed by another client into alice's INBOX and Lists
  and bob's INBOX is delivered while the daemon runs, within seconds,
  watched with NOTIFY (one connection per account);
- the account with the wrong password is reported once, not on every
  poll, and does not stop the others;
- SIGUSR1 polls every account now (the hour-long one too);
- alice and bob deliver into one mbox: no message is interleaved with
  another, each is there once and byte-exact;
- Dovecot killed and started again: the daemon reconnects and delivers
  what arrived while it was down;
- SIGHUP with an account added and one removed: the new one is polled,
  the removed one no more, the others go on; a broken config on SIGHUP
  keeps the old one running and says why;
- a one-shot run while the daemon runs exits 8 and says how to wake it;
- SIGTERM: exit 143 within 10 s, nothing lost or duplicated."""

import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

WAIT = 20  # seconds within which pushed mail must be there (about 1 s expected)


def test(t):
    dv = t.dovecot()
    shared = t.path("shared.mbox")
    timer_box = t.path("timer.mbox")
    lock = t.path("daemon.lock")
    keys_a = h.dovecot_keys(dv, "alice", folders="INBOX, Lists", deliver="mbox", mbox=shared, idle="yes")
    keys_b = h.dovecot_keys(dv, "bob", deliver="mbox", mbox=shared, idle="yes")
    keys_t = h.dovecot_keys(dv, "bob", folders="Timer", deliver="mbox", mbox=timer_box, poll_interval="3600")
    keys_x = h.dovecot_keys(dv, "alice", folders="Nothing", password="wrong", deliver="mbox", mbox=t.path("x.mbox"),
                            poll_interval="10")
    dv.create("alice", "Lists")
    dv.create("bob", "Timer")
    cfg_text = h.config({"alice": keys_a, "bob": keys_b, "timer": keys_t, "bad": keys_x})
    cfg = h.write_config(t.path("fetchrc"), cfg_text, 0o600)

    d = h.start_mailfetch(["-c", cfg, "-d", "300", "-v", "--lockfile", lock], tmpdir=t.dir, timeout=300,
                          on_result=t._finished)
    err = lambda: d.stderr_so_far().decode("utf-8", "replace")  # noqa: E731

    t.check(h.wait_for(lambda: "watching 2 folders with NOTIFY" in err() and "watching 1 folder with NOTIFY" in err(),
                       timeout=WAIT), "both idle accounts watch with NOTIFY", err())
    sent = []
    for user, folder, n in (("alice", "INBOX", 1), ("alice", "Lists", 2), ("bob", "INBOX", 3)):
        m = h.sample_message(100 + n, 1500, subject="pushed %d" % n)
        start = time.monotonic()
        dv.append(user, folder, m, create=False)
        sent.append(m)
        got = h.wait_for(lambda: len(h.mbox_messages(shared)) >= len(sent), timeout=WAIT)
        t.check(got, "mail APPENDed to %s's %s delivered while the daemon runs (%.1f s)" %
                (user, folder, time.monotonic() - start), err()[-3000:])
    t.messages_equal(sorted(h.mbox_messages(shared), key=h.subject_of), sorted(sent, key=h.subject_of),
                     "pushed mail, each once and byte-exact")

    # The wrong password: reported once, not on every poll.
    time.sleep(1)
    bad_lines = [l for l in err().splitlines() if l.startswith("mailfetch: bad (alice@") and "login" in l]
    t.eq(len(bad_lines), 1, "the refused login is an error once", err()[-3000:])

    # SIGUSR1: the account on an hour-long timer is polled now.
    tm = h.sample_message(200, 900, subject="timer")
    dv.append("bob", "Timer", tm, create=False)
    time.sleep(1)
    t.eq(len(h.mbox_messages(timer_box)), 0, "the hour-long timer has not polled yet")
    d.kill(signal.SIGUSR1)
    t.check(h.wait_for(lambda: len(h.mbox_messages(timer_box)) == 1, timeout=WAIT), "SIGUSR1 polled it", err()[-2000:])
    t.check(len([l for l in err().splitlines() if l.startswith("mailfetch: bad (alice@")]) == 1,
            "the bad account is still reported once at error level")

    # Many messages into one mbox from two accounts at once: no interleaving.
    burst = []
    for i in range(12):
        m = h.sample_message(300 + i, 20000 + 97 * i, subject="burst %d" % i)
        burst.append(m)
    dv.append_many("alice", "INBOX", burst[:6], create=False)
    dv.append_many("bob", "INBOX", burst[6:], create=False)
    want = len(sent) + len(burst)
    t.check(h.wait_for(lambda: len(h.mbox_messages(shared)) >= want, timeout=WAIT), "the burst delivered", err()[-2000:])
    t.messages_equal(sorted(h.mbox_messages(shared), key=h.subject_of), sorted(sent + burst, key=h.subject_of),
                     "two accounts into one mbox: every message whole, once")

    # A one-shot run meanwhile: exit 8, says how to wake the daemon.
    r = t.run(["--lockfile", lock], cfg_text)
    t.exit_code(r, 8, "a one-shot run while the daemon runs")
    t.check("a mailfetch daemon (pid %d) holds the lock" % d.pid in r.stderr and "kill -USR1" in r.stderr,
            "it names the daemon and how to wake it", r.stderr)

    # Dovecot killed; mail arrives meanwhile; Dovecot back on the same ports.
    late = h.sample_message(400, 1200, subject="while down")
    dv.restart(down_for=1.0, before_start=lambda: dv.deliver_offline("alice", late))
    want += 1
    t.check(h.wait_for(lambda: len(h.mbox_messages(shared)) >= want, timeout=60),
            "mail that arrived while Dovecot was down is delivered after it is back", err()[-3000:])
    after = h.sample_message(401, 1200, subject="after restart")
    dv.append("bob", "INBOX", after, create=False)
    want += 1
    t.check(h.wait_for(lambda: len(h.mbox_messages(shared)) >= want, timeout=60), "push works again after the restart",
            err()[-3000:])

    # SIGHUP: timer removed, a new account added.
    newbox = t.path("new.mbox")
    keys_n = h.dovecot_keys(dv, "bob", folders="Newacct", deliver="mbox", mbox=newbox, poll_interval="3600")
    dv.create("bob", "Newacct")
    nm = h.sample_message(500, 800, subject="new account")
    dv.append("bob", "Newacct", nm, create=False)
    h.write_config(cfg, h.config({"alice": h.dovecot_keys(dv, "alice", folders="INBOX, Lists", deliver="mbox",
                                                          mbox=shared, idle="yes"),
                                  "bob": h.dovecot_keys(dv, "bob", deliver="mbox", mbox=shared, idle="yes"),
                                  "bad": keys_x, "newacct": keys_n}), 0o600)
    d.kill(signal.SIGHUP)
    t.check(h.wait_for(lambda: len(h.mbox_messages(newbox)) == 1, timeout=WAIT), "SIGHUP: the added account is polled",
            err()[-2000:])
    t.check(h.wait_for(lambda: re.search(r"config re-read: 1 account started, 1 stopped, 3 unchanged", err()),
                       timeout=WAIT), "SIGHUP: one started, one stopped, the rest untouched", err()[-2000:])
    dv.append("bob", "Timer", h.sample_message(501, 700, subject="timer again"), create=False)
    d.kill(signal.SIGUSR1)
    time.sleep(2)
    t.eq(len(h.mbox_messages(timer_box)), 1, "the removed account is polled no more")
    # A broken config: kept running as before.
    with open(cfg, "a") as f:
        f.write("\n[broken]\nhost = x\nnot_a_key = 1\n")
    d.kill(signal.SIGHUP)
    t.check(h.wait_for(lambda: "config not re-read" in err(), timeout=WAIT),
            "a broken config on SIGHUP is reported", err()[-1500:])
    last = h.sample_message(502, 1300, subject="after a broken config")
    dv.append("alice", "Lists", last, create=False)
    want += 1
    t.check(h.wait_for(lambda: len(h.mbox_messages(shared)) >= want, timeout=WAIT), "the old config goes on", err()[-2000:])

    # SIGTERM: out within 10 s, with 143.
    start = time.monotonic()
    d.kill(signal.SIGTERM)
    r = d.wait()
    took = time.monotonic() - start
    t.eq(r.code, 128 + signal.SIGTERM, "SIGTERM: exit 143")
    t.check(took < 10, "SIGTERM: stopped within 10 s (%.1f s)" % took)
    got = h.mbox_messages(shared)
    subjects = [h.subject_of(m) for m in got]
    t.eq(len(subjects), len(set(subjects)), "nothing delivered twice over the whole daemon run")
    t.eq(len(got), want, "everything delivered")


h.main(test)
