#!/usr/bin/env python3
"""--daemon, more of it against a real Dovecot:

- NOTIFY taken out of Dovecot's capabilities: one IDLE connection per
  folder watches instead, and mail APPENDed into either folder is
  delivered while the daemon runs;
- the service manager's protocol: with NOTIFY_SOCKET pointing at the
  test's datagram socket, READY=1 comes with a STATUS, the watchdog
  (WATCHDOG_USEC) is pinged at least every half interval, SIGHUP gives
  RELOADING=1 then READY=1, SIGTERM gives STOPPING=1;
- --logfile rotated under the daemon: after mv and SIGHUP, new lines go
  to the new file, none are lost from either;
- SIGTERM during a delivery (an MDA that takes 2 s): the daemon is gone
  within 10 s with 143, and a one-shot run afterwards fetches what is
  left, nothing twice and nothing lost."""

import os
import re
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

NO_NOTIFY = "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UNSELECT CHILDREN NAMESPACE " \
            "UIDPLUS LITERAL+ ESEARCH\n"


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, text)
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode(errors="replace")))

    def texts(self):
        return [m for _, m in self.messages]

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def test(t):
    dv = t.dovecot(extra_conf=NO_NOTIFY)
    dv.create("alice", "Lists")
    box = t.path("idle.mbox")
    log = t.path("daemon.log")
    cfg = h.write_config(t.path("fetchrc"), h.config({"alice": h.dovecot_keys(
        dv, "alice", folders="INBOX, Lists", deliver="mbox", mbox=box, idle="yes")}), 0o600)
    ns = NotifySocket(t.path("notify.sock"))
    h.add_cleanup(ns.close)
    d = h.start_mailfetch(["-c", cfg, "-d", "300", "-v", "--logfile", log, "--lockfile", t.path("lock")],
                          tmpdir=t.dir, timeout=300, on_result=t._finished,
                          env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000"})
    logtext = lambda: h.read_file(log).decode("utf-8", "replace")  # noqa: E731

    t.check(h.wait_for(lambda: any(m.startswith("READY=1") for m in ns.texts()), timeout=20),
            "READY=1 sent to the notify socket", ns.texts())
    t.check(any("STATUS=serving 1 account" in m for m in ns.texts()), "with a STATUS", ns.texts())
    t.check(h.wait_for(lambda: "watching 2 folders with IDLE" in logtext(), timeout=20),
            "without NOTIFY: IDLE on one connection per folder", logtext()[-2000:])
    sent = []
    for folder, n in (("INBOX", 1), ("Lists", 2), ("INBOX", 3)):
        m = h.sample_message(600 + n, 2500, subject="idle %d" % n)
        dv.append("alice", folder, m, create=False)
        sent.append(m)
        t.check(h.wait_for(lambda: len(h.mbox_messages(box)) >= len(sent), timeout=20),
                "mail APPENDed into %s delivered (IDLE)" % folder, logtext()[-2000:])
    t.messages_equal(sorted(h.mbox_messages(box), key=h.subject_of), sorted(sent, key=h.subject_of), "each once, byte-exact")

    # The watchdog: pinged at least every half second (WATCHDOG_USEC 1 s).
    time.sleep(2.5)
    pings = [at for at, m in ns.messages if m == "WATCHDOG=1"]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    t.check(len(pings) >= 4 and max(gaps) < 0.9, "WATCHDOG=1 every half interval (%d pings, widest gap %.2f s)" %
            (len(pings), max(gaps) if gaps else -1))

    # Log rotation: mv, SIGHUP, new lines in the new file.
    os.rename(log, log + ".1")
    d.kill(signal.SIGHUP)
    t.check(h.wait_for(lambda: os.path.exists(log) and "config re-read" in logtext(), timeout=20),
            "after SIGHUP the daemon writes to a new log file", h.read_file(log + ".1")[-500:])
    t.check(h.wait_for(lambda: any(m.startswith("RELOADING=1") for m in ns.texts()) and
                       [m.startswith("READY=1") for m in ns.texts()].count(True) >= 2, timeout=10),
            "SIGHUP: RELOADING=1, then READY=1 again", ns.texts())
    m = h.sample_message(610, 900, subject="after rotation")
    dv.append("alice", "Lists", m, create=False)
    sent.append(m)
    t.check(h.wait_for(lambda: len(h.mbox_messages(box)) >= len(sent) and "UID" in logtext(), timeout=20),
            "its delivery is logged in the new file", logtext())
    old = h.read_file(log + ".1").decode("utf-8", "replace")
    t.check("idle 1" not in logtext() and "watching 2 folders" in old, "the old lines stay in the old file")
    t.check(all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d mailfetch: ", l)
                for l in (old + logtext()).splitlines() if l), "every line has its timestamp")
    t.eq(d.stderr_so_far(), b"", "nothing on stderr with --logfile")

    d.kill(signal.SIGTERM)
    r = d.wait()
    t.eq(r.code, 143, "SIGTERM: exit 143")
    t.check(h.wait_for(lambda: "STOPPING=1" in ns.texts(), timeout=5), "STOPPING=1 sent", ns.texts())

    # SIGTERM during a delivery.
    slow_box = t.path("slow.mbox")
    mda = t.path("slow-mda")
    with open(mda, "w") as f:
        f.write("#!/bin/sh\necho x >> '%s.started'\nsleep 2\nexec cat >> '%s.raw'\n" % (slow_box, slow_box))
    os.chmod(mda, 0o755)
    cfg2 = h.write_config(t.path("fetchrc2"), h.config({"bob": h.dovecot_keys(
        dv, "bob", deliver="mda", mda=mda, idle="yes")}), 0o600)
    d = h.start_mailfetch(["-c", cfg2, "-d", "300", "--lockfile", t.path("lock2")], tmpdir=t.dir, timeout=300,
                          on_result=t._finished)
    time.sleep(2)
    several = [h.sample_message(700 + i, 1000, subject="slow %d" % i) for i in range(5)]
    dv.append_many("bob", "INBOX", several, create=False)
    t.check(h.wait_for(lambda: os.path.exists(slow_box + ".started"), timeout=20),
            "the pushed mail is being delivered (the MDA started)")
    time.sleep(0.5)
    start = time.monotonic()
    d.kill(signal.SIGTERM)
    r = d.wait()
    took = time.monotonic() - start
    t.eq(r.code, 143, "SIGTERM during a delivery: exit 143")
    t.check(took < 10, "gone within 10 s (%.1f s)" % took)
    r = t.run([], h.config({"bob": h.dovecot_keys(dv, "bob", deliver="mda", mda=mda)}), timeout=120)
    t.check(r.code in (0, 1), "a one-shot run afterwards", r.stderr)
    raw = h.read_file(slow_box + ".raw")
    got = re.findall(rb"Subject: (slow \d)", raw)
    t.eq(sorted(set(got)), sorted(set(s.encode() for s in ("slow %d" % i for i in range(5)))),
         "every message delivered")
    t.check(len(got) <= len(set(got)) + 1, "at most the one message in the MDA's hands twice (%d for %d)" %
            (len(got), len(set(got))))


h.main(test)
