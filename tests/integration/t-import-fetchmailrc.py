#!/usr/bin/env python3
"""mailfetch --import-fetchmailrc: fetchmail's rc files turned into fetchrc.

For every rc file of the corpus in tests/fetchmailrc/ (one per feature, in
the styles of fetchmail's manual and FAQ, and a few long ones shaped like
real ones): the output is the golden file NAME.fetchrc, it passes
mailfetch --check-config, and every keyword of the rc file shows up in it,
as the key it maps to or in a comment (no setting is dropped without a
word); when fetchmail itself is installed, it accepts every one of them.
-o writes the same text, mode 0600, and never over an existing file.  The
rc files in tests/fetchmailrc/bad/ are refused with exit 5 and FILE:LINE
(the line their first comment names), as fetchmail refuses them.  End to
end: an rc file pointing at a real Dovecot, converted, fetches and delivers
the mail through its mda, and deletes it on the server (fetchmail's
default, no keep).

FMRC_REGOLD=1 rewrites the golden files from the binary's output."""

import glob
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

CORPUS = os.path.join(h.SRCDIR, "tests", "fetchmailrc")
ENV = {"FETCHMAILUSER": "localuser", "FETCHMAILHOME": None}

# Keywords of fetchmail's rc grammar worth a word in the output.
KEYWORDS = set("""
set logfile idfile pidfile daemon syslog invisible showdots postmaster bouncemail spambounce softbounce
warnings tracepolls defaults poll skip via aka local localdomains proto protocol service port interval
auth authenticate timeout envelope qvirtual principal esmtpname esmtppassword bad-header user username
pass password folder folders smtp smtphost fetchdomains smtpaddress smtpname antispam mda bsmtp lmtp
preconnect postconnect interface monitor plugin plugout batchlimit fetchlimit fetchsizelimit fastuidl
expunge properties is to keep flush limitflush fetchall rewrite forcecr stripcr pass8bits dropstatus
dropdelivered mimedecode idle dns uidl ssl sslkey sslcert sslproto sslcertck sslcertfile sslcertpath
sslcommonname sslfingerprint checkalias limit
""".split())
NAME_AFTER = {"user", "username", "is", "to", "pass", "password"}
# Where a keyword that maps to a key shows up (any one will do).
MAPPED = {
    "keep": ["keep = "], "fetchall": ["fetch = "], "folder": ["folders = ", 'folder "'],
    "folders": ["folders = "], "ssl": ["tls = implicit", "ssl"], "pass": ["password"],
    "user": ["user = "], "username": ["user = "], "smtp": ["smtp = ", "lmtp = ", "smtphost"],
    "smtphost": ["smtp = ", "lmtp = ", "smtphost"], "fetchlimit": ["fetch_limit = ", "fetchlimit"],
    "port": ["port = "], "service": ["port = ", "service"], "proto": ["protocol = ", "proto "],
    "protocol": ["protocol = ", "proto "], "authenticate": ["auth"], "sslcertfile": ["tls_ca_file = "],
    "is": ["recipient = ", "%T replaced", "is ", "multidrop"], "to": ["multidrop"],
    "sslproto": ["tls_min_version = ", "sslproto"], "smtpname": ["recipient = "], "smtpaddress": ["recipient = "], "local": ["localdomains"],
    "poll": ["from: poll"], "skip": ["from: skip"],
}


def keywords_of(text):
    """The keywords used in an rc file, as fetchmail's lexer would see them
    (roughly: quoted strings, comments and names after user/is/to/password
    are not keywords; nokeep is keep)."""
    found, prev = set(), None
    for m in re.finditer(r'"[^"]*"|\'[^\']*\'|#[^\n]*|[^\s=;:,]+', text):
        w = m.group(0)
        if w[0] in "\"'#":
            prev = None if w[0] != "#" else prev
            continue
        if prev not in NAME_AFTER:
            if w.startswith("no") and w[2:] in KEYWORDS:
                w = w[2:]
            if w in KEYWORDS:
                found.add(w)
        prev = w
    return found


def normalize(text):
    return text.replace(CORPUS, "@RCDIR@")


def convert(t, name, args=()):
    return t.run(["--import-fetchmailrc", name] + list(args), env=ENV, cwd=CORPUS)


def test_corpus(t):
    rcs = sorted(glob.glob(os.path.join(CORPUS, "*.rc")))
    t.require(len(rcs) >= 15, "the corpus has its rc files (%d)" % len(rcs))
    regold = os.environ.get("FMRC_REGOLD")
    for rc in rcs:
        name = os.path.basename(rc)
        base = name[:-3]
        r = convert(t, name)
        t.exit_code(r, h.EX_OK, "%s: converted" % name)
        out = normalize(r.stdout)
        golden = os.path.join(CORPUS, base + ".fetchrc")
        if regold:
            with open(golden, "w") as f:
                f.write(out)
        want = h.read_file(golden).decode("utf-8", "surrogateescape")
        t.eq(out, want, "%s: output is %s.fetchrc" % (name, base),
             "\n".join(l for l in __import__("difflib").unified_diff(
                 want.splitlines(), out.splitlines(), "want", "got", lineterm=""))[:4000])

        # The converted file is a valid config.
        conv = t.path(base + ".fetchrc")
        h.write_config(conv, r.stdout)
        c = t.run(["--check-config", "-c", conv])
        t.exit_code(c, h.EX_OK, "%s: the conversion passes --check-config" % name)

        # No setting dropped without a word.
        with open(rc, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
        missing = []
        for kw in sorted(keywords_of(text)):
            alts = MAPPED.get(kw, [])
            if re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(kw), r.stdout) is None and \
                    not any(a in r.stdout for a in alts):
                missing.append(kw)
        t.check(not missing, "%s: every keyword is in the output, as a key or a comment" % name,
                "missing: %s" % ", ".join(missing))
        # Passwords are not echoed in the messages on stderr.
        for pw in re.findall(r'\bpass(?:word)?\s+"([^"]+)"', text):
            t.check(pw not in r.stderr, "%s: password %r not on stderr" % (name, pw[:3] + "..."))


def test_output_file(t):
    out = t.path("converted", "fetchrc")
    os.makedirs(os.path.dirname(out))
    old = os.umask(0o022)
    try:
        r = convert(t, "long-home.rc", ["-o", out])
    finally:
        os.umask(old)
    t.exit_code(r, h.EX_OK, "-o FILE")
    t.eq(r.stdout, "", "-o: nothing on stdout")
    t.require(os.path.exists(out), "-o wrote the file")
    t.eq(os.stat(out).st_mode & 0o777, 0o600, "-o: the file is mode 0600")
    r2 = convert(t, "long-home.rc")
    t.eq(h.read_file(out).decode(), r2.stdout, "-o: the same text as on stdout")
    t.eq(sorted(os.listdir(os.path.dirname(out))), ["fetchrc"], "-o: no temporary file left")
    c = t.run(["--check-config", "-c", out])
    t.exit_code(c, h.EX_OK, "-o: the file passes --check-config as it is")

    before = h.read_file(out)
    r = convert(t, "basic.rc", ["--output", out])
    t.exit_code(r, h.EX_USAGE, "--output over an existing file")
    t.check("exists" in r.stderr, "--output over an existing file says so", r.stderr)
    t.eq(h.read_file(out), before, "the existing file is left as it was")
    t.eq(sorted(os.listdir(os.path.dirname(out))), ["fetchrc"], "no temporary file left after a refusal")

    r = convert(t, "basic.rc", ["-o", t.path("no-such-dir", "fetchrc")])
    t.exit_code(r, h.EX_USAGE, "-o into a missing directory")

    r = t.run(["-o", t.path("x")], env=ENV)
    t.exit_code(r, h.EX_USAGE, "-o without --import-fetchmailrc")
    r = t.run(["--import-fetchmailrc", "a.rc", "b.rc"], env=ENV, cwd=CORPUS)
    t.exit_code(r, h.EX_USAGE, "two rc files")
    r = t.run(["--import-fetchmail"], env=ENV)
    t.exit_code(r, h.EX_USAGE, "--import-fetchmail (abbreviated) is unknown")
    r = t.run(["--import-fetchmailrc", t.path("missing.rc")], env=ENV)
    t.exit_code(r, h.EX_USAGE, "a missing rc file")

    # "-" is standard input, as for fetchmail -f -.
    with open(os.path.join(CORPUS, "basic.rc"), "rb") as f:
        p = subprocess.run([h.mailfetch_binary(), "--import-fetchmailrc", "-"], stdin=f, capture_output=True,
                           env=h.mailfetch_env(t.dir, ENV), cwd=CORPUS, timeout=60)
    t.eq(p.returncode, 0, "-: standard input read")
    t.eq(p.stdout.decode().replace("converted from -", "converted from basic.rc"),
         convert(t, "basic.rc").stdout, "-: the same fetchrc as from the file")

    # Without FILE: ~/.fetchmailrc, or $FETCHMAILHOME/fetchmailrc.
    home = t.path("home")
    os.makedirs(home, exist_ok=True)
    shutil.copy(os.path.join(CORPUS, "basic.rc"), os.path.join(home, ".fetchmailrc"))
    r = t.run(["--import-fetchmailrc"], env=ENV)
    t.exit_code(r, h.EX_OK, "no FILE: ~/.fetchmailrc")
    t.check("[imap.example.org]" in r.stdout and "/.fetchmailrc" in r.stdout, "no FILE: ~/.fetchmailrc read",
            r.stdout[:500])
    fh = t.mkdir("fmhome")
    shutil.copy(os.path.join(CORPUS, "keep.rc"), os.path.join(fh, "fetchmailrc"))
    r = t.run(["--import-fetchmailrc"], env=dict(ENV, FETCHMAILHOME=fh))
    t.exit_code(r, h.EX_OK, "no FILE, FETCHMAILHOME set")
    t.check("[five.example.com]" in r.stdout, "no FILE: $FETCHMAILHOME/fetchmailrc read", r.stdout[:500])


def test_bad(t):
    bads = sorted(glob.glob(os.path.join(CORPUS, "bad", "*.rc")))
    t.require(len(bads) >= 8, "the corpus has bad rc files (%d)" % len(bads))
    for rc in bads:
        name = os.path.basename(rc)
        with open(rc) as f:
            line = int(re.match(r"# error: (\d+)", f.readline()).group(1))
        r = t.run(["--import-fetchmailrc", os.path.join("bad", name)], env=ENV, cwd=CORPUS)
        t.exit_code(r, h.EX_USAGE, "bad/%s refused" % name)
        errs = [l for l in r.stderr.splitlines() if l.startswith("mailfetch: ")]
        t.check(len(errs) == 1 and errs[0].startswith("mailfetch: bad/%s:%d: " % (name, line)),
                "bad/%s: one line naming FILE:%d" % (name, line), r.stderr)
        t.eq(r.stdout, "", "bad/%s: nothing on stdout" % name)


def test_fetchmail_agrees(t):
    """fetchmail itself reads every good rc file and refuses every bad one."""
    fm = shutil.which("fetchmail")
    if fm is None:
        t.log("note: fetchmail is not installed; its own opinion of the corpus is not asked")
        return
    d = t.mkdir("fetchmail")
    for rc in sorted(glob.glob(os.path.join(CORPUS, "*.rc")) + glob.glob(os.path.join(CORPUS, "bad", "*.rc"))):
        bad = os.path.basename(os.path.dirname(rc)) == "bad"
        copy = os.path.join(d, os.path.basename(rc))
        shutil.copy(rc, copy)
        os.chmod(copy, 0o600)
        p = subprocess.run([fm, "-f", copy, "--configdump"], cwd=d, env=dict(os.environ, HOME=d),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
        err = p.stderr.decode(errors="replace")
        if bad:
            t.check(p.returncode != 0, "fetchmail refuses bad/%s too" % os.path.basename(rc), err)
        else:
            t.check(p.returncode == 0, "fetchmail reads %s" % os.path.basename(rc), err)


def test_end_to_end(t):
    dv = t.dovecot()
    msgs = h.sample_messages(4)
    dv.append_many("alice", "INBOX", msgs)
    out = t.mkdir("delivered")
    pw = dv.users["alice"].replace("\\", "\\\\").replace('"', "\\x22")
    rc = t.path("fetchmailrc")
    with open(rc, "w") as f:
        f.write('# converted end to end\nset daemon 60\n'
                'poll 127.0.0.1 with proto IMAP port %d\n'
                '    user "alice" there with password "%s" is alice here\n'
                '    options ssl sslcertfile "%s"\n'
                '    mda "cat > $(mktemp %s/msg.XXXXXX) && echo %%F >> %s/senders"\n'
                % (dv.ssl_port, pw, dv.certs.ca, out, out))
    os.chmod(rc, 0o600)
    conv = t.path("converted.fetchrc")
    r = t.run(["--import-fetchmailrc", rc, "-o", conv], env=ENV)
    t.exit_code(r, h.EX_OK, "end to end: converted")
    with open(conv) as f:
        text = f.read()
    t.check("password = %s\n" % dv.users["alice"] in text, "end to end: the password, escapes decoded", text)
    r = t.run(["-c", conv])
    t.exit_code(r, h.EX_OK, "end to end: mailfetch with the converted config")
    got = []
    for p in sorted(glob.glob(os.path.join(out, "msg.*"))):
        got.append(h.read_file(p))
    t.eq(sorted(got), sorted(msgs), "end to end: every message delivered through the mda")
    senders = h.read_file(os.path.join(out, "senders")).decode().split()
    t.eq(sorted(senders), sorted(re.search(rb"^Return-Path: <([^>]*)>", m, re.M).group(1).decode() for m in msgs),
         "end to end: %F is the sender")
    t.eq(dv.count("alice"), 0, "end to end: no keep, so the messages are gone from the server (fetchmail's default)")


def test(t):
    test_corpus(t)
    test_output_file(t)
    test_bad(t)
    test_fetchmail_agrees(t)
    test_end_to_end(t)


h.main(test)
