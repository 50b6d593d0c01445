#!/usr/bin/env python3
"""--store-password and --forget-password, through libsecret's file
backend (no desktop needed), against a real Dovecot.

- One line on stdin (not a terminal) is stored under host and user; the
  command says where it went; a run with password_store = secret then
  logs in and fetches; secret-tool finds the item by the same attributes.
- On a terminal (a pseudo-terminal here) the prompt names the account,
  and what is typed is not echoed.
- --forget-password removes it (exit 0), a second time finds nothing
  (exit 1); a run then fails with exit 3 and names the command to store
  one.  An unknown account, an empty password and extra arguments are
  exit 5, nothing stored; an account that reads its password elsewhere
  gets a note."""

import os
import pty
import select
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    probe = h.config({"acct": {"host": "127.0.0.1", "user": "alice", "password_store": "secret"}})
    r = t.run(["--check-config"], probe)
    if r.code == h.EX_USAGE and "without libsecret" in r.stderr:
        raise h.Skip("mailfetch was configured --without-libsecret")
    if shutil.which("secret-tool") is None:
        raise h.Skip("secret-tool (libsecret-tools) is not installed")

    kenv = {"SECRET_BACKEND": "file", "SECRET_FILE_TEST_PATH": t.path("keyring"),
            "SECRET_FILE_TEST_PASSWORD": "keyring-unlock"}
    dv = t.dovecot()
    pw = dv.users["alice"]
    msgs = h.sample_messages(2)
    dv.append_many("alice", "INBOX", msgs)
    keys = h.dovecot_keys(dv, deliver="mbox", mbox=t.path("inbox.mbox"), password=None, password_store="secret")
    cfg_path = h.write_config(t.path("fetchrc"), h.config({"acct": keys}), 0o600)
    env = h.mailfetch_env(t.dir, kenv)

    def mf(args, stdin_text):
        p = subprocess.run([h.mailfetch_binary(), "-c", cfg_path] + args, input=stdin_text.encode(), env=env,
                           capture_output=True, timeout=60, cwd=t.dir)
        t.log("ran: mailfetch %s -> exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout.decode(errors="replace"),
                                                      p.stderr.decode(errors="replace")))
        return p

    def lookup():
        p = subprocess.run(["secret-tool", "lookup", "host", "127.0.0.1", "user", "alice"], env=dict(os.environ, **kenv),
                           capture_output=True, timeout=30)
        return p.stdout.decode() if p.returncode == 0 else None

    # Bad uses first: nothing stored.
    p = mf(["--store-password", "nosuch"], pw + "\n")
    t.eq(p.returncode, h.EX_USAGE, "unknown account: exit 5")
    t.check(b"no account named nosuch" in p.stderr, "unknown account: says so", p.stderr)
    p = mf(["--store-password", "acct"], "\n")
    t.eq(p.returncode, h.EX_USAGE, "empty password: exit 5")
    t.check(b"no password given; nothing stored" in p.stderr, "empty password: says so", p.stderr)
    p = mf(["--store-password", "acct", "extra"], pw + "\n")
    t.eq(p.returncode, h.EX_USAGE, "an extra argument: exit 5")
    t.eq(lookup(), None, "nothing stored by the bad uses")

    # Without a stored password the run says how to store one.
    r = t.run([], h.config({"acct": keys}), env=kenv)
    t.exit_code(r, h.EX_AUTH, "no stored password")
    t.check("store one with: mailfetch --store-password acct" in r.stderr, "the error names --store-password",
            r.stderr)

    # From stdin (a pipe).
    p = mf(["--store-password", "acct"], pw + "\n")
    t.eq(p.returncode, 0, "--store-password from stdin: exit 0")
    t.check(b"stored the password of acct (alice@127.0.0.1) in the Secret Service" in p.stdout,
            "it says where the password went", p.stdout)
    t.check(pw.encode() not in p.stdout + p.stderr, "the password is not printed")
    t.eq(lookup(), pw, "secret-tool finds it under host and user")
    r = t.run(["-v", "-v"], h.config({"acct": keys}), env=kenv)
    t.exit_code(r, h.EX_OK, "a run with the stored password")
    t.messages_equal(h.parse_mbox(h.read_file(t.path("inbox.mbox"))), msgs, "mail delivered")
    t.no_secrets(r.out + r.err, "alice", pw, "-v -v with the stored password")

    # On a terminal: a prompt, no echo.
    new_pw = "typed on a terminal 1"
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(h.mailfetch_binary(), [h.mailfetch_binary(), "-c", cfg_path, "--store-password", "acct"], env)
    seen = b""
    deadline = time.time() + 30
    typed = False
    while time.time() < deadline:
        r_, _, _ = select.select([fd], [], [], 0.5)
        if r_:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not typed and b"Password for acct (alice@127.0.0.1): " in seen:
            time.sleep(0.2)
            os.write(fd, new_pw.encode() + b"\n")
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    t.check(typed, "the terminal showed the prompt", seen)
    t.eq(os.waitstatus_to_exitcode(status), 0, "--store-password on a terminal: exit 0")
    t.check(new_pw.encode() not in seen, "what was typed was not echoed", seen)
    t.eq(lookup(), new_pw, "the typed password replaced the old one")

    # Forget.
    p = mf(["--forget-password", "acct"], "")
    t.eq(p.returncode, 0, "--forget-password: exit 0")
    t.check(b"removed the password of acct" in p.stdout, "it says so", p.stdout)
    t.eq(lookup(), None, "the item is gone")
    p = mf(["--forget-password", "acct"], "")
    t.eq(p.returncode, 1, "--forget-password with nothing stored: exit 1")

    # An account that reads its password elsewhere: stored, with a note.
    keys2 = h.dovecot_keys(dv, deliver="mbox", mbox=t.path("x.mbox"))
    cfg2 = h.write_config(t.path("fetchrc2"), h.config({"acct": keys2}), 0o600)
    p = subprocess.run([h.mailfetch_binary(), "-c", cfg2, "--store-password", "acct"], input=(pw + "\n").encode(),
                       env=env, capture_output=True, timeout=60)
    t.eq(p.returncode, 0, "stored for an account with password in the config")
    t.check(b"note: acct takes its password from password; set password_store = secret" in p.stdout,
            "a note says the stored password is not used yet", p.stdout)


h.main(test)
