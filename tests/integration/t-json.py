#!/usr/bin/env python3
"""--json: one JSON document on stdout, and nothing else there, for
monitoring scripts.

- Two accounts on a real Dovecot: one with three folders (mail in two,
  one that does not exist), one with a wrong password.  The document
  parses; per account and folder it gives found, delivered, failed,
  skipped, bytes, seconds, the exit status, its class and the error
  text; the run's exit status is the worst (as without --json).
- limit and fetch_limit: what stays on the server is counted as skipped,
  the exit class is fetch-limit.
- --check --json: found counts and nothing delivered; stdout holds only
  the document (no "N messages to fetch" lines).
- A config error and a held lock still give a document with the error.
- Server text with control bytes and bytes that are not UTF-8 stays
  valid JSON."""

import fcntl
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def doc(t, r, what):
    try:
        d = json.loads(r.out.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        t.check(False, "%s: stdout is one JSON document (%s)" % (what, e), r.out)
        return None
    t.check(True, "%s: stdout is one JSON document" % what)
    return d


def test(t):
    dv = t.dovecot()
    inbox, lists = h.sample_messages(3), h.sample_messages(2)
    dv.append_many("alice", "INBOX", inbox)
    dv.append_many("alice", "Lists", lists)
    mbox = t.path("m.mbox")
    cfg = h.config({"good": h.dovecot_keys(dv, folders="INBOX, Lists, Nope", deliver="mbox", mbox=mbox),
                    "bad": h.dovecot_keys(dv, password="wrong", deliver="mbox", mbox=mbox)})
    r = t.run(["--json"], cfg)
    t.exit_code(r, h.EX_AUTH, "two accounts, one failing: the worst exit status")
    d = doc(t, r, "a run")
    if d is None:
        return
    t.eq((d["exit"], d["class"], d["check"], d["error"]), (3, "auth", False, None), "run: exit, class, check, error")
    t.check(d["seconds"] > 0 and d["started"].endswith("Z"), "run: seconds and start time", d)
    good, bad = d["accounts"]
    t.eq((good["name"], good["user"], good["host"], good["port"]), ("good", "alice", "127.0.0.1", dv.ssl_port),
         "account: name, user, host, port")
    t.eq((good["exit"], good["class"], good["found"], good["delivered"], good["failed"], good["skipped"]),
         (7, "server", 5, 5, 0, 0), "good: exit 7 (the missing folder), 5 found and delivered")
    t.eq(good["bytes"], sum(len(h.crlf(m)) for m in inbox + lists), "good: bytes delivered (as the server sent them)")
    f = {x["name"]: x for x in good["folders"]}
    t.eq([x["name"] for x in good["folders"]], ["INBOX", "Lists", "Nope"], "folders in order")
    t.eq((f["INBOX"]["found"], f["INBOX"]["delivered"], f["INBOX"]["class"]), (3, 3, "delivered"), "INBOX")
    t.eq((f["Lists"]["found"], f["Lists"]["delivered"]), (2, 2), "Lists")
    t.check(f["Nope"]["class"] == "server" and "Nope" in (f["Nope"]["error"] or ""),
            "Nope: class server, the server's refusal as error", f["Nope"])
    t.check(bad["class"] == "auth" and "login with PLAIN failed" in (bad["error"] or ""),
            "bad: class auth with the error text", bad)
    t.eq([x["polled"] for x in bad["folders"]], [False], "bad: its folder was not polled")
    t.check(all(isinstance(x["seconds"], (int, float)) for x in good["folders"]), "folders have seconds")
    t.eq(len(h.parse_mbox(h.read_file(mbox))), 5, "the mail was delivered all the same")
    t.check(b"good (alice@127.0.0.1): selecting folder Nope failed" in r.err, "errors still go to stderr", r.err)

    # limit and fetch_limit: skipped.
    dv.append_many("alice", "INBOX", h.sample_messages(4, sizes=(500, 600, 700, 90000)))
    keys = h.dovecot_keys(dv, deliver="mbox", mbox=mbox, limit="50K", fetch_limit="2")
    r = t.run(["--json"], h.config({"acct": keys}))
    t.exit_code(r, 13, "fetch_limit left mail behind")
    d = doc(t, r, "limits")
    if d:
        a = d["accounts"][0]
        t.eq((a["class"], a["found"], a["delivered"], a["skipped"]), ("fetch-limit", 4, 2, 2),
             "4 found: 2 delivered, 1 over limit and 1 past fetch_limit skipped")

    # --check --json: counts only, nothing else on stdout.
    r = t.run(["--check", "--json"], h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox)}))
    t.exit_code(r, h.EX_OK, "--check --json with mail waiting")
    d = doc(t, r, "--check")
    if d:
        a = d["accounts"][0]
        t.eq((d["check"], a["found"], a["delivered"]), (True, 2, 0), "--check (no limit now): found 2, delivered 0")

    # Errors before any account: still a document.
    r = t.run(["--json"], "[broken\nhost = x\n")
    t.exit_code(r, h.EX_USAGE, "config error")
    d = doc(t, r, "config error")
    if d:
        t.check(d["class"] == "usage" and d["error"] and d["accounts"] == [], "config error in the document", d)
    lock = t.path("lock")
    with open(lock, "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        r = t.run(["--json", "--lockfile", lock], h.config({"acct": h.dovecot_keys(dv, deliver="mbox", mbox=mbox)}))
    t.exit_code(r, 8, "lock held")
    d = doc(t, r, "lock held")
    if d:
        t.check(d["class"] == "locked" and "holds the lock" in (d["error"] or ""), "lock error in the document", d)

    # Hostile server text stays valid JSON.
    def hostile_select(sess, tag, args):
        sess.send(b"%s NO [NONEXISTENT] bad \x1b[2J \"quoted\" \\ \xff\xfe caf\xc3\xa9\r\n" % tag.encode())

    srv = t.fake(tls="implicit", handlers={"SELECT": hostile_select})
    r = t.run(["--json"], h.config({"acct": h.fake_keys(srv, deliver="mbox", mbox=t.path("f.mbox"))}))
    srv.stop()
    d = doc(t, r, "hostile server text")
    if d:
        err = d["accounts"][0]["folders"][0]["error"] or ""
        t.check('bad \x1b[2J "quoted" \\ \ufffd\ufffd caf\u00e9' in err, "control bytes escaped, quotes kept, "
                "bad bytes as U+FFFD, UTF-8 kept", err)
        t.check(b"\x1b" not in r.out, "no raw ESC on stdout")


h.main(test)
