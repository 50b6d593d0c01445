#!/usr/bin/env python3
"""Which mail, against a real Dovecot:
- --check logs in, prints how many messages each folder would give (and
  the account's total) on stdout, fetches and marks nothing: exit 0 with
  mail, 1 without; it takes no run lock;
- long options are never abbreviated: --check-conf (for --check-config)
  and --chec are usage errors (exit 5);
- limit = SIZE leaves larger messages on the server, untouched, and says
  so once, not on every run; --limit overrides it;
- fetch_limit = N fetches at most N messages per folder per run, the
  oldest first, and exits 13 when that left mail behind; --fetch-limit
  overrides it."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

EX_LIMIT = 13


def test(t):
    dv = t.dovecot()
    small = [h.sample_message(i + 1, 900 + 100 * i) for i in range(5)]
    big = h.sample_message(99, 300000)
    dv.append_many("alice", "INBOX", small[:3] + [big] + small[3:])
    dv.create("alice", "Lists")
    dv.append_many("alice", "Lists", [h.sample_message(50, 700)])
    mbox = t.path("inbox.mbox")
    keys = h.dovecot_keys(dv, deliver="mbox", mbox=mbox, folders="INBOX, Lists")

    # --check: counts, changes nothing.
    cfg = h.config({"acct": keys})
    r = t.run(["--check"], cfg)
    t.exit_code(r, h.EX_OK, "--check with mail")
    t.check("acct: INBOX: 6 messages to fetch" in r.stdout and "acct: Lists: 1 message to fetch" in r.stdout
            and "acct: 7 messages for alice@127.0.0.1" in r.stdout, "--check prints the counts on stdout", r.stdout)
    t.eq(h.read_file(mbox), b"", "--check delivers nothing")
    t.check(not any("\\Seen" in f for f in dv.flags("alice").values()), "--check marks nothing")
    t.check(not os.path.exists(os.path.join(t.dir, "home", ".local", "state", "mailfetch", "acct.state")),
            "--check leaves no journal")

    for bad in ("--check-conf", "--chec", "--check-config=x"):
        r = t.run([bad], cfg)
        t.exit_code(r, h.EX_USAGE, "%s is refused" % bad)
    r = t.run(["--check-conf"], cfg)
    t.check("never abbreviated" in r.stderr, "the error says why", r.stderr)

    # limit: the big one stays, reported once.
    cfg = h.config({"acct": dict(keys, limit="100k")})
    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "run with limit = 100k")
    t.messages_equal(sorted(h.parse_mbox(h.read_file(mbox))), sorted(small + [h.sample_message(50, 700)]),
                     "everything but the big one delivered")
    t.check("larger than limit" in r.stderr and "UID 4" in r.stderr, "the big one is reported", r.stderr)
    t.eq(dv.flags("alice").get(4), set(), "the big one is untouched on the server")
    r = t.run([], cfg)
    t.exit_code(r, h.EX_NOMAIL, "second run with the limit")
    t.check("larger than limit" not in r.stderr, "not reported a second time", r.stderr)
    r = t.run(["--check"], cfg)
    t.check("1 message over the limit" in r.stdout, "--check mentions it", r.stdout)
    r = t.run(["--limit", "1M"], cfg)
    t.exit_code(r, h.EX_OK, "--limit 1M overrides the limit")
    t.check(big in h.parse_mbox(h.read_file(mbox)), "now the big one is delivered")

    # fetch_limit: at most N per folder per run, exit 13 while mail is left.
    more = [h.sample_message(100 + i, 800) for i in range(5)]
    first = dv.append_many("alice", "INBOX", more)
    mbox2 = t.path("limited.mbox")
    cfg = h.config({"acct": dict(keys, mbox=mbox2, folders="INBOX", fetch_limit="2")})
    got = []
    for k, want in ((1, EX_LIMIT), (2, EX_LIMIT), (3, h.EX_OK)):
        r = t.run([], cfg)
        t.exit_code(r, want, "fetch_limit = 2, run %d" % k)
        got = h.parse_mbox(h.read_file(mbox2))
        t.eq(len(got), min(2 * k, 5), "run %d: %d messages so far" % (k, min(2 * k, 5)))
    t.messages_equal(got, more, "oldest first, each once")
    t.eq([dv.flags("alice").get(u) for u in first], [{"\\Seen"}] * 5, "all marked in the end")
    dv.append_many("alice", "INBOX", [h.sample_message(200, 700), h.sample_message(201, 700)])
    r = t.run(["--fetch-limit", "1"], h.config({"acct": dict(keys, mbox=mbox2, folders="INBOX")}))
    t.exit_code(r, EX_LIMIT, "--fetch-limit 1 with two new messages")
    t.eq(len(h.parse_mbox(h.read_file(mbox2))), 6, "one of them fetched")


h.main(test)
