#!/usr/bin/env python3
"""Two runs at once: while a slow first run holds the lock, a second run
exits 8 without logging in or delivering anything; the first run then
finishes with exit 0 and every message delivered exactly once.  The lock is
released at the end of a run, and a run killed with SIGKILL does not leave
a lock behind that stops the next run."""

import os
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

MDA = """#!/bin/sh
# Slow test MDA: marks that it started, sleeps, then keeps the message.
OUT='%(out)s'
: > "$OUT/.started.$$"
tmp=$(mktemp "$OUT/.tmp.XXXXXX") || exit 74
cat > "$tmp" || exit 74
sleep %(delay)s
mv "$tmp" "$OUT/msg.$(date +%%s%%N).$$"
: > "$OUT/.done.$$"
"""


def make_mda(t, name, delay):
    out = t.mkdir(name)
    path = t.path(name + ".sh")
    with open(path, "w") as f:
        f.write(MDA % dict(out=out, delay=delay))
    os.chmod(path, 0o755)
    return out, path


def marks(out, prefix):
    return [n for n in os.listdir(out) if n.startswith(prefix)]


def test(t):
    dv = t.dovecot()
    msgs = h.sample_messages(3)
    dv.append_many("alice", "INBOX", msgs)
    slow_out, slow = make_mda(t, "slow", "1")
    fast_out, fast = make_mda(t, "fast", "0")
    slow_cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=slow)})
    fast_cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=fast)})

    first = t.start([], slow_cfg, config_name="slow.rc")
    started = h.wait_for(lambda: marks(slow_out, ".started."), timeout=20)
    t.require(started, "the first run got as far as its MDA")
    dv.settle_log(quiet=0.1)
    logins = dv.login_count()

    second = t.run([], fast_cfg, config_name="fast.rc")
    t.exit_code(second, h.EX_LOCK, "second run while the first holds the lock")
    t.check(not first.poll(), "the first run was still running when the second ended")
    dv.settle_log(quiet=0.1)
    t.eq(dv.login_count(), logins, "the second run did not log in")
    t.eq(marks(fast_out, ""), [], "the second run delivered nothing")

    r = first.wait()
    t.exit_code(r, h.EX_OK, "first run")
    t.messages_equal(sorted(h.read_maildir_like(slow_out)), sorted(msgs), "each message delivered exactly once")
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "all \\Seen")

    r = t.run([], fast_cfg, config_name="fast.rc")
    t.exit_code(r, h.EX_NOMAIL, "a run after the first finished is not locked out")

    # A run killed while it holds the lock.
    more = [h.sample_message(10), h.sample_message(11)]
    dv.append_many("alice", "INBOX", more)
    n_started = len(marks(slow_out, ".started."))
    victim = t.start([], slow_cfg, config_name="slow.rc")
    t.require(h.wait_for(lambda: len(marks(slow_out, ".started.")) > n_started, timeout=20),
              "the killed run got as far as its MDA")
    victim.kill(signal.SIGKILL)
    victim.wait()
    # Let the orphaned MDA finish, so only a lock left behind can block.
    h.wait_for(lambda: len(marks(slow_out, ".done.")) >= len(marks(slow_out, ".started.")), timeout=10)
    r = t.run([], fast_cfg, config_name="fast.rc")
    t.exit_code(r, h.EX_OK, "the run after a SIGKILLed run is not locked out")
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "after the crash: all \\Seen")
    got = h.read_maildir_like(slow_out) + h.read_maildir_like(fast_out)
    t.check(all(m in got for m in more), "after the crash: no message lost")


h.main(test)
