#!/usr/bin/env python3
"""The progress line: when stderr is a terminal (a pseudo-terminal here)
and neither -q nor -v -v is given, a long fetch shows one status line,
updated in place (CR, erase to end of line): account, folder, messages
done of the total, bytes, rate and time left; it is cleared at the end,
and log lines (-v) are written over it and it is drawn again after them.
Nothing of it when stderr is not a terminal (cron), with -q, or with
-v -v (the trace)."""

import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

N = 40


def slow_server(t):
    def pace(sess, message):
        time.sleep(0.06)

    return t.fake(tls="implicit", messages=h.sample_messages(N), on_fetch_message=pace)


def test(t):
    srv = slow_server(t)
    cfg = h.write_config(t.path("fetchrc"), h.config({"acct": h.fake_keys(srv, deliver="mbox",
                                                                          mbox=t.path("a.mbox"))}), 0o600)
    code, out = t.run_on_pty([], cfg)
    srv.stop()
    t.eq(code, 0, "fetch on a terminal")
    text = out.decode("utf-8", "replace")
    lines = re.findall(r"\r\x1b\[Kacct INBOX: (\d+) of (\d+) messages, [\d.]+ (?:B|KiB|MiB), [\d.]+ (?:B|KiB|MiB)/s"
                       r"(?:, \d+:\d\d left)?", text)
    t.check(len(lines) >= 3, "the status line was drawn and updated in place (%d times)" % len(lines), text[-2000:])
    t.check(all(int(b) == N for _, b in lines), "it counts of the folder's %d messages" % N, lines)
    t.check([int(a) for a, _ in lines] == sorted(int(a) for a, _ in lines), "the count only goes up", lines)
    t.check(", 0:" in text and " left" in text, "it says how long is left", text[-500:])
    t.check(text.endswith("\r\x1b[K"), "it is cleared at the end", repr(text[-200:]))
    t.eq(len(h.parse_mbox(h.read_file(t.path("a.mbox")))), N, "all delivered")

    # -v: log lines over it, then it again.
    srv = slow_server(t)
    cfg = h.write_config(t.path("fetchrc2"), h.config({"acct": h.fake_keys(srv, deliver="mbox",
                                                                           mbox=t.path("b.mbox"))}), 0o600)
    code, out = t.run_on_pty(["-v"], cfg)
    srv.stop()
    text = out.decode("utf-8", "replace")
    t.eq(code, 0, "-v on a terminal")
    t.check(re.search(r"messages[^\r\n]*\r\x1b\[Kmailfetch: acct: INBOX: UID \d+, \d+ bytes: delivered\r?\n"
                      r"acct INBOX: \d+ of", text) is not None,
            "-v: a log line clears the status line, and it is drawn again after it", text[-1500:])
    t.check(re.search(r"[^\n\x1b]mailfetch: acct", text.replace("\r\x1b[K", "\x1b")) is None,
            "-v: no log line starts in the middle of the status line", text[-1500:])

    # Not on a terminal, -q, -v -v: none of it.
    for args, on_tty in (([], False), (["-q"], True), (["-v", "-v"], True)):
        srv = slow_server(t)
        cfgp = h.write_config(t.path("fetchrc-x"), h.config({"acct": h.fake_keys(srv, deliver="mbox",
                                                                                  mbox=t.path("x.mbox"))}), 0o600)
        if on_tty:
            code, out = t.run_on_pty(args, cfgp)
        else:
            p = subprocess.run([h.mailfetch_binary(), "-c", cfgp] + args, capture_output=True, timeout=120,
                               env=h.mailfetch_env(t.dir), cwd=t.dir)
            code, out = p.returncode, p.stderr + p.stdout
        srv.stop()
        what = "%s%s" % (" ".join(args) or "no options", " on a terminal" if on_tty else ", stderr a pipe")
        t.eq(code, 0, what)
        t.check(b"\x1b[K" not in out and b" of %d messages" % N not in out, "%s: no status line" % what, out[-500:])


h.main(test)
