#!/usr/bin/env python3
"""--daemon against the scripted fake server, for what Dovecot will not
do while it is watched:

- a server that never answers DONE (when the IDLE is restarted): the
  watch connection is given up after `timeout`, a new one opened, and
  mail delivered later is still pushed;
- a server that drops every connection after 2 s: the daemon keeps
  reconnecting, every message is delivered once, and the log says so
  once rather than on every reconnect;
- a server that floods EXISTS (1,000 lines at once): a handful of polls,
  not a thousand.
The daemon stays up through all of it and stops on SIGTERM with 143."""

import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def start_daemon(t, srv, name, **keys):
    box = t.path(name + ".mbox")
    k = h.fake_keys(srv, deliver="mbox", mbox=box, idle="yes", **keys)
    cfg = h.write_config(t.path(name + ".rc"), h.config({"acct": k}), 0o600)
    d = h.start_mailfetch(["-c", cfg, "-d", "300", "--lockfile", t.path(name + ".lock")], tmpdir=t.dir,
                          timeout=300, on_result=t._finished)
    return d, box


def logins(srv):
    return sum(1 for n in srv.command_names() if n in ("LOGIN", "AUTHENTICATE"))


def stop(t, d, what):
    d.kill(signal.SIGTERM)
    r = d.wait()
    t.eq(r.code, 143, "%s: the daemon was still up and stopped on SIGTERM" % what)
    return r


def test(t):
    msg = lambda i: h.sample_message(i, 1200, subject="fault %d" % i)  # noqa: E731

    # 1. DONE never answered (the first IDLE only; the restart is due after 10 s).
    srv = t.fake(tls="implicit", idle_fault="no-done-reply", idle_fault_times=1)
    d, box = start_daemon(t, srv, "nodone", idle_restart="10", timeout="3")
    t.check(h.wait_for(lambda: srv.idle_starts() >= 1, timeout=20), "the daemon went into IDLE", srv.log_tail())
    t.check(h.wait_for(lambda: srv.idle_starts() >= 2, timeout=30),
            "after the unanswered DONE it came back and idles again", srv.log_tail())
    srv.deliver(msg(1))
    t.check(h.wait_for(lambda: len(h.parse_mbox(h.read_file(box))) == 1, timeout=20),
            "mail delivered after that is pushed", d.stderr_so_far()[-2000:])
    stop(t, d, "no DONE reply")
    srv.stop()

    # 2. Every connection dropped after 2 s.
    srv = t.fake(tls="implicit", drop_every=2)
    d, box = start_daemon(t, srv, "drops")
    for i in range(3):
        time.sleep(2.5)
        srv.deliver(msg(10 + i))
    t.check(h.wait_for(lambda: len(h.parse_mbox(h.read_file(box))) == 3, timeout=60),
            "every message delivered through the drops", d.stderr_so_far()[-3000:])
    r = stop(t, d, "drops")
    got = h.parse_mbox(h.read_file(box))
    t.eq(len(got), 3, "each once")
    watch_lines = [l for l in r.stderr.splitlines() if "watch" in l]
    t.check(len(watch_lines) <= 2, "the dropped watch connections are not reported every time (%d lines)" %
            len(watch_lines), r.stderr[-2000:])
    srv.stop()

    # 3. A flood of EXISTS.
    srv = t.fake(tls="implicit", idle_fault="flood-exists:1000")
    d, box = start_daemon(t, srv, "flood")
    t.check(h.wait_for(lambda: srv.idle_starts() >= 1, timeout=20), "idling", srv.log_tail())
    time.sleep(3)
    n = logins(srv)
    t.check(n <= 6, "1,000 EXISTS at once make a few polls, not a thousand (%d logins)" % n)
    srv.deliver(msg(20))
    t.check(h.wait_for(lambda: len(h.parse_mbox(h.read_file(box))) == 1, timeout=20), "and mail still comes",
            d.stderr_so_far()[-2000:])
    stop(t, d, "flood")
    srv.stop()


h.main(test)
