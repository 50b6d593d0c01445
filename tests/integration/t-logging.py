#!/usr/bin/env python3
"""Where the log lines go (issue 10).

--logfile FILE: every line (errors, warnings, -v, the -v -v trace) is
appended to FILE, each with an ISO 8601 local timestamp with milliseconds
and offset, nothing on stderr; created with mode 0600, appended to across
runs; a symlink as FILE, a missing directory or a directory: exit 5 with
one line naming it.  --logfile and --syslog together: exit 5.  No status
line on a terminal with either.

JOURNAL_STREAM: when it names stderr (DEV:INO of a pipe here), each stderr
line starts with <3>, <4>, <6> or <7>; without it, or naming another file,
none do.

--syslog: for real, when the test may make a private mount namespace
(root and unshare(1)): there /dev/log is the test's datagram socket, and
the messages must carry facility mail with the priority of the line
(<19> error, <20> warning, <22> -v, <23> trace), ident mailfetch with the
pid, the text without "mailfetch: ", and control bytes escaped.  Without
a namespace that part is reported as SKIPPED and checks nothing.

log_reopen (SIGHUP in daemon mode) is tested by tests/unit/test-log.c."""

import datetime
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) mailfetch: (.*)$")
PRIO_ERR, PRIO_WARNING, PRIO_INFO, PRIO_DEBUG = 3, 4, 6, 7
LOG_MAIL = 2


def read_text(path):
    return h.read_file(path).decode("utf-8", "replace")


def check_stamped(t, text, what, offset=None):
    """Every line of text has a valid timestamp close to now; returns the
    texts after "mailfetch: "."""
    lines = text.splitlines()
    bad = [l for l in lines if not STAMPED.match(l)]
    t.check(lines and not bad, "%s: every line starts with an ISO 8601 timestamp and mailfetch:" % what,
            "\n".join(bad[:5]) or "(no lines)")
    now = datetime.datetime.now(datetime.timezone.utc)
    far, offsets = [], set()
    for l in lines:
        m = STAMPED.match(l)
        if not m:
            continue
        ts = datetime.datetime.fromisoformat(m.group(1))
        offsets.add(m.group(1)[-6:])
        if abs((ts - now).total_seconds()) > 300:
            far.append(l)
    t.check(not far, "%s: the timestamps are the time of the run" % what, "\n".join(far[:3]))
    if offset is not None:
        t.eq(offsets, {offset}, "%s: local time with its offset %s" % (what, offset))
    return [STAMPED.match(l).group(2) for l in lines if STAMPED.match(l)]


def logfile(t):
    dv = t.dovecot()
    user, pw = "alice", dv.users["alice"]
    mbox = t.path("inbox.mbox")
    log = t.path("logs", "mailfetch.log")
    os.makedirs(t.path("logs"))
    acct = h.dovecot_keys(dv, deliver="mbox", mbox=mbox)

    dv.append_many(user, "INBOX", h.sample_messages(2))
    r = t.run(["-v", "-v", "--logfile", log], h.config({"acct": acct}))
    t.exit_code(r, h.EX_OK, "--logfile -v -v")
    t.eq(r.err, b"", "--logfile: nothing on stderr")
    t.eq(r.out, b"", "--logfile: nothing on stdout")
    t.eq(stat.S_IMODE(os.stat(log).st_mode), 0o600, "--logfile: created with mode 0600")
    first = read_text(log)
    lines = check_stamped(t, first, "--logfile -v -v")
    t.check(any(re.match(r"acct: IMAP> \S+ ", l) for l in lines), "--logfile: IMAP> trace lines in it", first[-2000:])
    t.check(any(re.match(r"acct: IMAP< ", l) for l in lines), "--logfile: IMAP< trace lines in it")
    t.check(any(re.match(r"acct: TLS: ", l) for l in lines), "--logfile: TLS: trace lines in it")
    t.eq(len([l for l in lines if re.match(r"acct: INBOX: UID \d+, \d+ bytes: delivered$", l)]), 2,
         "--logfile: the -v line of each message in it")
    t.check(any(re.match(r"acct: 2 messages \(\d+ bytes\) for alice@127\.0\.0\.1: 2 delivered, 0 failed$", l)
                for l in lines), "--logfile: the -v summary in it")
    t.no_secrets(h.read_file(log), user, pw, "--logfile -v -v")
    t.eq(len(h.parse_mbox(h.read_file(mbox))), 2, "--logfile: the mail was delivered")

    # A second run appends; an error goes there too, with its timestamp.
    bad = dict(acct, password="not-the-password")
    r = t.run(["--logfile", log], h.config({"acct": bad}))
    t.exit_code(r, h.EX_AUTH, "--logfile, wrong password")
    t.eq(r.err, b"", "--logfile, wrong password: nothing on stderr")
    both = read_text(log)
    t.check(both.startswith(first) and len(both) > len(first), "--logfile: appended to, not replaced")
    added = check_stamped(t, both[len(first):], "--logfile, error")
    t.check(any(l.startswith("acct (alice@127.0.0.1): ") for l in added), "--logfile: the error line in it", added)
    t.no_secrets(h.read_file(log), user, pw, "--logfile, wrong password")

    # The offset is the local one, hours and minutes.
    for tz, off in (("XST-5:30", "+05:30"), ("YST+3", "-03:00"), ("UTC0", "+00:00")):
        log2 = t.path("logs", "tz%s.log" % off.replace(":", ""))
        r = t.run(["--logfile", log2], h.config({"acct": bad}), env={"TZ": tz})
        t.exit_code(r, h.EX_AUTH, "TZ=%s" % tz)
        check_stamped(t, read_text(log2), "TZ=%s" % tz, offset=off)

    # A symlink as the log file is refused, whether or not its target exists.
    target = t.path("logs", "target.log")
    link = t.path("logs", "link.log")
    os.symlink(target, link)
    for exists in (False, True):
        if exists:
            with open(target, "w") as f:
                f.write("untouched\n")
        r = t.run(["-v", "--logfile", link], h.config({"acct": acct}))
        what = "--logfile a symlink (target %s)" % ("exists" if exists else "missing")
        t.exit_code(r, h.EX_USAGE, what)
        t.check(re.fullmatch(r"mailfetch: cannot open log file %s: it is a symbolic link[^\n]*; [^\n]+\n"
                             % re.escape(link), r.stderr) is not None, "%s: one line naming it, what to do" % what,
                r.stderr)
        t.eq(h.read_file(target, None), b"untouched\n" if exists else None, "%s: the target is not touched" % what)
    t.check(dv.login_count("alice") >= 2, "(Dovecot counts logins)")

    # Paths that cannot be a log file: exit 5 before anything else, one clear line.
    for path, why in ((t.path("no-such-dir", "x.log"), "No such file or directory"),
                      (t.path("logs"), "it is a directory")):
        r = t.run(["--logfile", path], h.config({"acct": acct}))
        t.exit_code(r, h.EX_USAGE, "--logfile %s" % path)
        t.check(re.fullmatch(r"mailfetch: cannot open log file %s: %s; [^\n]+\n" % (re.escape(path), why),
                             r.stderr) is not None, "--logfile %s: one line naming the file, why, what to do" % path,
                r.stderr)
    if os.geteuid() != 0:
        ro = t.mkdir("readonly")
        os.chmod(ro, 0o500)
        path = os.path.join(ro, "x.log")
        r = t.run(["--logfile", path], h.config({"acct": acct}))
        t.exit_code(r, h.EX_USAGE, "--logfile in a read-only directory")
        t.check(re.fullmatch(r"mailfetch: cannot open log file %s: Permission denied; [^\n]+\n" % re.escape(path),
                             r.stderr) is not None, "--logfile in a read-only directory: one clear line", r.stderr)
    else:
        t.log("note: running as root: a read-only directory would not stop the open; not tried")

    # The options.
    for args, what in ((["--logfile", log, "--syslog"], "--logfile with --syslog"),
                       (["--syslog", "--logfile", log], "--syslog with --logfile"),
                       (["--logf", log], "--logf (abbreviated)"),
                       (["--sys"], "--sys (abbreviated)"),
                       (["--logfile"], "--logfile without a value"),
                       (["--syslog=yes"], "--syslog with a value")):
        r = t.run(args, h.config({"acct": acct}))
        t.exit_code(r, h.EX_USAGE, what)
        t.eq(len(r.stderr.splitlines()), 1, "%s: one line on stderr" % what, r.stderr)
    r = t.run(["--help"])
    t.check("--logfile FILE" in r.stdout and "--syslog" in r.stdout, "--help lists --logfile and --syslog",
            r.stdout)


def no_status_line(t):
    """A fetch slow enough for the status line, stderr a terminal: none
    with --logfile or --syslog."""
    def pace(sess, message):
        time.sleep(0.06)

    for opt in ("--logfile", "--syslog"):
        srv = t.fake(tls="implicit", messages=h.sample_messages(15), on_fetch_message=pace)
        box = t.path("pty%s.mbox" % opt)
        cfg = h.write_config(t.path("fetchrc-pty"), h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=box)}))
        # (no -v with --syslog: nothing of a test in the real syslog)
        args = ["-v", "--logfile", t.path("pty.log")] if opt == "--logfile" else ["--syslog"]
        code, out = t.run_on_pty(args, cfg)
        srv.stop()
        t.eq(code, 0, "%s, stderr a terminal" % opt)
        t.eq(out, b"", "%s, stderr a terminal: no status line, nothing at all on it" % opt)
        t.eq(len(h.parse_mbox(h.read_file(box))), 15, "%s, stderr a terminal: all delivered" % opt)
    lines = check_stamped(t, read_text(t.path("pty.log")), "--logfile, stderr a terminal")
    t.eq(len([l for l in lines if " bytes: delivered" in l]), 15, "--logfile, stderr a terminal: the -v lines in it")


def run_with_pipe(t, args, cfg, journal):
    """Run mailfetch with stderr a pipe; journal: None (no JOURNAL_STREAM),
    "match" (its DEV:INO) or "other" (another file's).  Returns (exit, stderr text)."""
    rfd, wfd = os.pipe()
    env = h.mailfetch_env(t.dir)
    env.pop("JOURNAL_STREAM", None)
    if journal is not None:
        st = os.fstat(wfd) if journal == "match" else os.stat(cfg)
        env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    p = subprocess.Popen([h.mailfetch_binary(), "-c", cfg] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=wfd, env=env, cwd=t.dir)
    os.close(wfd)
    chunks = []
    with os.fdopen(rfd, "rb") as f:
        while True:
            b = f.read(65536)
            if not b:
                break
            chunks.append(b)
    p.wait(timeout=60)
    text = b"".join(chunks).decode("utf-8", "replace")
    t.log("ran: mailfetch %s (JOURNAL_STREAM %s) -> exit %d" % (" ".join(args), journal, p.returncode))
    marks = [m for m in h.SANITIZER_MARKS if m in text]
    t.check(not marks, "no sanitizer report", text[-3000:] if marks else None)
    return p.returncode, text


def fake_account(t, name, messages=2):
    """A fake server without UIDPLUS and an account that deletes (so a
    warning), and the same with a wrong password (so an error)."""
    srv = t.fake(tls="implicit", uidplus=False, messages=h.sample_messages(messages))
    keys = h.fake_keys(srv, deliver="mbox", mbox=t.path(name + ".mbox"), keep="no")
    good = h.write_config(t.path(name + ".fetchrc"), h.config({"acct": keys}))
    bad = h.write_config(t.path(name + "-bad.fetchrc"), h.config({"acct": dict(keys, password="wrong")}))
    return srv, good, bad


def classify(text):
    """(kind, line) for each line: what it ought to be logged as."""
    out = []
    for l in text.splitlines():
        body = re.sub(r"^(<\d>)?(mailfetch: )?", "", l)
        if re.match(r"acct: (IMAP[<>]|TLS:) ", body):
            kind = PRIO_DEBUG
        elif re.match(r"acct: (INBOX: |\d+ messages? )", body):
            kind = PRIO_INFO
        elif "server lacks UIDPLUS" in body:
            kind = PRIO_WARNING
        elif re.match(r"acct \(alice@127\.0\.0\.1\): ", body):
            kind = PRIO_ERR
        else:
            kind = None
        out.append((kind, l))
    return out


def journal(t):
    srv, good, bad = fake_account(t, "journal")
    code, text = run_with_pipe(t, ["-v", "-v"], good, "match")
    t.eq(code, 0, "JOURNAL_STREAM = stderr, -v -v")
    _, etext = run_with_pipe(t, [], bad, "match")
    srv.stop()
    seen = set()
    wrong = []
    for kind, l in classify(text + etext):
        m = re.match(r"<(\d)>mailfetch: ", l)
        if not m or kind is None or int(m.group(1)) != kind:
            wrong.append(l)
        else:
            seen.add(kind)
    t.check(not wrong, "JOURNAL_STREAM = stderr: every line starts with the priority prefix of its kind",
            "\n".join(wrong[:8]))
    t.eq(seen, {PRIO_ERR, PRIO_WARNING, PRIO_INFO, PRIO_DEBUG}, "JOURNAL_STREAM = stderr: <3>, <4>, <6> and <7> seen")

    for how in (None, "other"):
        srv, good, bad = fake_account(t, "nojournal-%s" % how)
        code, text = run_with_pipe(t, ["-v", "-v"], good, how)
        _, etext = run_with_pipe(t, [], bad, how)
        srv.stop()
        what = "JOURNAL_STREAM %s" % ("unset" if how is None else "naming another file")
        t.eq(code, 0, what)
        lines = (text + etext).splitlines()
        t.check(len(lines) > 10 and all(l.startswith("mailfetch: acct") for l in lines),
                "%s: no priority prefixes" % what, "\n".join(lines[:8]))

    # With --logfile, JOURNAL_STREAM does not matter: timestamps, no prefix.
    srv, good, bad = fake_account(t, "journal-logfile")
    log = t.path("journal.log")
    code, text = run_with_pipe(t, ["-v", "--logfile", log], good, "match")
    srv.stop()
    t.eq((code, text), (0, ""), "--logfile, JOURNAL_STREAM = stderr: nothing on stderr")
    check_stamped(t, read_text(log), "--logfile, JOURNAL_STREAM = stderr")


NSWRAP = r"""#!/bin/sh
# Runs "$@" in a private mount namespace where /dev is a tmpfs of symlinks
# to the real /dev, and /dev/log is the test's socket.  Exit 97: no namespace.
exec unshare --mount --propagation private /bin/sh -c '
D="$1"; shift
mount --rbind /dev "$D/realdev" || exit 97
mount -t tmpfs -o mode=0755,size=64k mailfetch-test-dev /dev || exit 97
for f in "$D"/realdev/*; do
	[ "$f" = "$D/realdev/log" ] || ln -s "$f" /dev/ || exit 97
done
ln -s "$D/devlog" /dev/log || exit 97
exec "$@"' nswrap "%(dir)s" "$@"
"""

SYSLOG_MSG = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mailfetch\[(\d+)\]: (.*)$", re.S)


def syslog(t):
    """--syslog for real in a private mount namespace; returns None, or why
    it could not be tested."""
    if os.geteuid() != 0:
        return "not root: no private mount namespace to put a /dev/log in"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare(1) or mount(8) not found"
    d = t.mkdir("ns")
    os.mkdir(os.path.join(d, "realdev"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(d, "devlog"))
    sock.settimeout(0.1)
    wrap = os.path.join(d, "nswrap")
    with open(wrap, "w") as f:
        f.write(NSWRAP % {"dir": d})
    os.chmod(wrap, 0o755)
    had_devlog = os.path.lexists("/dev/log")
    probe = subprocess.run([wrap, "/bin/sh", "-c", "test -S /dev/log && test -c /dev/null && "
                            "test -d /dev/pts && ! test -e %s/realdev/log" % d],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    t.eq(os.path.lexists("/dev/log"), had_devlog, "(the namespace left the real /dev alone)")
    if probe.returncode != 0:
        sock.close()
        return "no private mount namespace here (unshare --mount: exit %d: %s)" % (
            probe.returncode, probe.stderr.decode(errors="replace").strip()[:300])
    mf = os.path.join(d, "mailfetch")
    with open(mf, "w") as f:
        f.write("#!/bin/sh\nexec '%s' '%s' \"$@\"\n" % (wrap, h.mailfetch_binary()))
    os.chmod(mf, 0o755)

    got, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                got.append(sock.recv(65536))
            except socket.timeout:
                pass

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    srv, good, bad = fake_account(t, "syslog", messages=3)
    cfg_good, cfg_bad = h.read_file(good).decode(), h.read_file(bad).decode()
    r1 = t.run(["-v", "-v", "-v", "--syslog"], cfg_good, binary=mf, config_name="syslog.fetchrc")
    t.exit_code(r1, h.EX_OK, "--syslog -v -v -v")
    t.eq(r1.err, b"", "--syslog: nothing on stderr")
    r2 = t.run(["--syslog"], cfg_bad, binary=mf, config_name="syslog-bad.fetchrc")
    t.exit_code(r2, h.EX_AUTH, "--syslog, wrong password")
    t.eq(r2.err, b"", "--syslog, wrong password: nothing on stderr")
    srv.stop()
    time.sleep(0.3)
    stop.set()
    th.join()
    sock.close()

    msgs = [g.decode("utf-8", "replace") for g in got]
    for m in msgs[:3] + msgs[-2:]:
        t.log("syslog got: %r" % m[:160])
    t.check(len(msgs) > 10, "--syslog: messages arrived at /dev/log (%d)" % len(msgs))
    bad_form = [m for m in msgs if not SYSLOG_MSG.match(m)]
    t.check(not bad_form, "--syslog: every message is <PRI>TIMESTAMP mailfetch[PID]: TEXT", "\n".join(bad_form[:5]))
    parsed = [SYSLOG_MSG.match(m).groups() for m in msgs if SYSLOG_MSG.match(m)]
    t.check(all(int(p) >> 3 == LOG_MAIL for p, _, _ in parsed), "--syslog: facility mail on every message",
            sorted({p for p, _, _ in parsed}))
    t.eq(len({pid for _, pid, _ in parsed}), 2, "--syslog: the pid of each of the two runs")
    t.check(not any(text.startswith("mailfetch: ") for _, _, text in parsed),
            "--syslog: the text without \"mailfetch: \" (the ident says it)")
    t.check(not any(re.search(r"[\x00-\x1f\x7f]", text) for _, _, text in parsed),
            "--syslog: no control bytes in the text")
    t.check(any("\\x0d\\x0a" in text for _, _, text in parsed if "IMAP<" in text),
            "--syslog: the CR LF of a literal body escaped (-v -v -v)")
    wrong, seen = [], set()
    for (pri, _, text), (kind, _) in zip(parsed, classify("\n".join(x[2] for x in parsed))):
        if kind is None or int(pri) & 7 != kind:
            wrong.append("<%s> %s" % (pri, text))
        else:
            seen.add(int(pri))
    t.check(not wrong, "--syslog: each message with the priority of its kind", "\n".join(wrong[:8]))
    t.eq(seen, {19, 20, 22, 23}, "--syslog: <19> error, <20> warning, <22> -v and <23> trace seen")
    return None


def test(t):
    logfile(t)
    no_status_line(t)
    journal(t)
    why = syslog(t)
    if why is not None:
        # Not a pass: say so where automake's log shows it.
        t.log("SKIPPED PART (not counted as passed): --syslog was not tested: %s" % why)


h.main(test)
