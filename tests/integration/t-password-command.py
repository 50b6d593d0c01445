#!/usr/bin/env python3
"""password_command is bounded and gets no terminal:
- one that never finishes (`sleep 100`) with password_command_timeout = 2
  is killed with its whole process group: exit 3 within seconds, the
  error names password_command and the timeout, nothing logs in; on
  SIGTERM it is killed at once the same way;
- its stdin is /dev/null: one that reads stdin sees end of file at once,
  even when mailfetch's own stdin is a pipe that never ends;
- only the first line of its output is the password: one that prints
  "secret", waits, and prints a second line logs in with "secret";
- one that leaves a child behind holding its stdout open, prints the
  password (with or without a newline) and exits is used at once, without
  waiting for the child;
- a first line longer than PASSWORD_MAX (4096 bytes) is exit 3."""

import os
import shlex
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def script(t, name, text):
    p = t.path(name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o755)
    return p


def alive(pid):
    """True if pid runs (a zombie does not count)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_pidfile(path):
    """SIGKILL the process whose pid a test script wrote to path, if any."""
    try:
        pid = int(h.read_file(path).strip() or b"0")
    except ValueError:
        return
    if pid > 1:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test(t):
    dv = t.dovecot(users=dict(h.USERS, carol="secret"))
    mbox = t.path("inbox.mbox")
    msgs = h.sample_messages(4)
    dv.append_many("carol", "INBOX", msgs)

    def cfg(cmd, **over):
        return h.config({"acct": h.dovecot_keys(dv, user="carol", password=None, password_command=cmd,
                                                deliver="mbox", mbox=mbox, **over)})

    # Never finishes: killed at the deadline, with what it started.
    bgpid = t.path("sleep.pid")
    hang = script(t, "hang.sh", "#!/bin/sh\nsleep 100 &\necho $! > %s\nwait\n" % shlex.quote(bgpid))
    logins = dv.login_count()
    r = t.run([], cfg(hang, password_command_timeout=2), timeout=40)
    t.exit_code(r, h.EX_AUTH, "password_command that never finishes")
    t.check(2 <= r.elapsed < 10, "it was stopped after about 2 s (%.1f s)" % r.elapsed)
    t.check("password_command" in r.stderr and "2 s" in r.stderr and "password_command_timeout" in r.stderr,
            "the error names password_command, the 2 s and password_command_timeout", r.stderr)
    t.check("acct (carol@" in r.stderr, "the error names the account", r.stderr)
    pid = int(h.read_file(bgpid).strip() or b"0")
    t.check(pid > 0 and h.wait_for(lambda: not alive(pid), timeout=5),
            "the child it started was killed too (its process group)")
    kill_pidfile(bgpid)
    t.eq(dv.login_count(), logins, "no login without a password")

    # SIGTERM while it runs: it is killed at once, with what it started.
    bgpid = t.path("sleep-term.pid")
    hang = script(t, "hang-term.sh", "#!/bin/sh\nsleep 100 &\necho $! > %s\nwait\n" % shlex.quote(bgpid))
    run = t.start([], cfg(hang), timeout=60)
    t.require(h.wait_for(lambda: h.read_file(bgpid).strip(), timeout=10), "the command started")
    run.kill(signal.SIGTERM)
    finished = h.wait_for(run.poll, timeout=5)
    r = run.wait()
    t.check(finished and r.elapsed < 10, "SIGTERM: the run ends at once (%.1f s)" % r.elapsed)
    # 128 + 15, which the harness's runner reports as -15, like a death by signal.
    t.exit_code(r, (128 + signal.SIGTERM, -signal.SIGTERM), "SIGTERM during password_command")
    t.check("password_command" in r.stderr and "stop" in r.stderr, "SIGTERM: the error says why", r.stderr)
    pid = int(h.read_file(bgpid).strip() or b"0")
    t.check(pid > 0 and h.wait_for(lambda: not alive(pid), timeout=5), "SIGTERM: its child was killed too")
    kill_pidfile(bgpid)

    # Reads stdin: end of file at once, while mailfetch's own stdin is a
    # pipe (a FIFO this test holds open) that never ends.
    fifo = t.path("stdin.fifo")
    os.mkfifo(fifo)
    holder = os.open(fifo, os.O_RDWR)
    wrapper = script(t, "mailfetch-stdin-open", "#!/bin/sh\nexec %s \"$@\" < %s\n"
                     % (shlex.quote(h.mailfetch_binary()), shlex.quote(fifo)))
    reader = script(t, "reader.sh", "#!/bin/sh\ncat > /dev/null\necho secret\n")
    run = t.start([], cfg(reader), binary=wrapper, timeout=60)
    finished = h.wait_for(run.poll, timeout=10)
    os.close(holder)  # let an old mailfetch finish too
    r = run.wait()
    t.check(finished, "a password_command that reads stdin is not left waiting for input (%.1f s)" % r.elapsed)
    t.exit_code(r, h.EX_OK, "password_command reading stdin")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs, "mail delivered")

    # Only the first line counts; the rest is read (the command does not
    # block or die of SIGPIPE writing it) and dropped.
    m5 = h.sample_message(5)
    dv.append("carol", "INBOX", m5)
    two = script(t, "two-lines.sh", "#!/bin/sh\necho secret\nsleep 0.3\necho second line\n")
    r = t.run([], cfg(two))
    t.exit_code(r, h.EX_OK, "secret, then a second line: logs in with secret")
    t.check("second line" not in r.output and "secret" not in r.output, "neither line printed", r.output)
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), msgs + [m5], "mail delivered")

    # A child left holding stdout open does not keep us waiting.
    for k, end in enumerate(("\\n", "")):
        m = h.sample_message(6 + k)
        dv.append("carol", "INBOX", m)
        pidf = t.path("bg%d.pid" % k)
        bg = script(t, "bg%d.sh" % k, "#!/bin/sh\nsleep 20 2>/dev/null &\necho $! > %s\nprintf 'secret%s'\n"
                    % (shlex.quote(pidf), end))
        r = t.run([], cfg(bg), timeout=60)
        kill_pidfile(pidf)
        what = "with a newline" if end else "without a newline"
        t.exit_code(r, h.EX_OK, "password %s, a child holding stdout" % what)
        t.check(r.elapsed < 10, "%s: not waiting for the child (%.1f s)" % (what, r.elapsed))
        t.eq(h.parse_mbox(h.read_file(mbox))[-1:], [m], "%s: mail delivered" % what)

    # A first line over PASSWORD_MAX.
    longline = script(t, "long.sh", "#!/bin/sh\nhead -c 5000 /dev/zero | tr '\\0' x\n")
    r = t.run([], cfg(longline))
    t.exit_code(r, h.EX_AUTH, "a first line of 5000 bytes")
    t.check("password_command" in r.stderr and "4096" in r.stderr, "the error says how long it may be", r.stderr)


h.main(test)
