#!/usr/bin/env python3
"""Several accounts, [defaults], folders and account selection.

[defaults] is inherited; `folders` with a name that needs quoting fetches
from every folder listed; fetch = all also fetches read mail; naming an
account on the command line polls only that one; and with several accounts
the most serious exit code wins: a failing account is never hidden behind
another one's success (the good account's mail is still delivered).  A
missing folder among others costs only that folder (exit 7)."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


def test(t):
    dv = t.dovecot()
    inbox = [h.sample_message(1), h.sample_message(2, 5000)]
    work = [h.sample_message(3, 2500)]
    spaced = [h.sample_message(4, 900)]
    dv.append_many("alice", "INBOX", inbox)
    dv.append_many("alice", "Work", work)
    dv.append_many("alice", "My \"Odd\" Folder", spaced)
    bob_read = h.sample_message(5)
    bob_new = h.sample_message(6)
    dv.append("bob", "INBOX", bob_read, flags=("\\Seen",))
    dv.append("bob", "INBOX", bob_new)

    abox, bbox = t.path("alice.mbox"), t.path("bob.mbox")
    defaults = {"host": "127.0.0.1", "port": dv.ssl_port, "tls": "implicit", "tls_ca_file": t.certs.ca,
                "deliver": "mbox"}
    alice = {"user": "alice", "password": dv.users["alice"], "mbox": abox,
             "folders": 'INBOX, Work, My "Odd" Folder'}
    bob = {"user": "bob", "password": dv.users["bob"], "mbox": bbox, "fetch": "all"}

    # Only bob, by name.
    text = h.config({"alice": alice, "bob": bob}, defaults=defaults)
    r = t.run(["bob"], text)
    t.exit_code(r, h.EX_OK, "only account bob")
    t.messages_equal(h.parse_mbox(h.read_file(bbox)), [bob_read, bob_new], "bob: fetch = all got read mail too")
    t.eq(h.read_file(abox), b"", "alice was not polled")

    # Both; bob has nothing new now (but fetch = all: he gets both again).
    r = t.run([], text)
    t.exit_code(r, h.EX_OK, "both accounts")
    got = h.parse_mbox(h.read_file(abox))
    t.messages_equal(got, inbox + work + spaced, "alice: every folder, in the order listed")
    fl = {f: dv.flags("alice", f) for f in ("INBOX", "Work", "My \"Odd\" Folder")}
    t.check(all("\\Seen" in x for d in fl.values() for x in d.values()), "alice: all folders \\Seen", fl)

    # alice fails (wrong password), bob succeeds: the failure wins.
    more = h.sample_message(7)
    dv.append("alice", "INBOX", more)
    bad = dict(alice, password="wrong-password")
    text = h.config({"alice": bad, "bob": dict(bob, fetch="unseen")}, defaults=defaults)
    dv.append("bob", "INBOX", h.sample_message(8))
    r = t.run([], text)
    t.exit_code(r, h.EX_AUTH, "alice exit 3 + bob exit 0")
    t.eq(len(h.parse_mbox(h.read_file(bbox))), 5, "bob's new mail delivered despite alice's failure")
    t.check("alice" in r.stderr, "the error names the failing account", r.stderr)

    # Order does not matter.
    dv.append("bob", "INBOX", h.sample_message(9))
    text = h.config({"bob": dict(bob, fetch="unseen"), "alice": bad}, defaults=defaults)
    r = t.run([], text)
    t.exit_code(r, h.EX_AUTH, "bob exit 0 + alice exit 3 (other order)")

    # No mail for one, mail for the other: 0.
    dv.append("bob", "INBOX", h.sample_message(10))
    text = h.config({"alice": alice, "bob": dict(bob, fetch="unseen")}, defaults=defaults)
    r = t.run([], text)
    t.exit_code(r, h.EX_OK, "alice gets the message her failed run left, bob his new one")
    r = t.run([], text)
    t.exit_code(r, h.EX_NOMAIL, "both without new mail")

    # A folder that does not exist, between two that do: its SELECT fails
    # (and the UID SEARCH sent along with it is ignored); the folders
    # around it are fetched and marked, and the run ends with exit 7.
    before = len(h.parse_mbox(h.read_file(abox)))
    new_inbox, new_work = h.sample_message(11, 700), h.sample_message(12, 800)
    dv.append("alice", "INBOX", new_inbox)
    dv.append("alice", "Work", new_work)
    text = h.config({"alice": dict(alice, folders="INBOX, Nope, Work")}, defaults=defaults)
    r = t.run([], text)
    t.exit_code(r, h.EX_SERVER, "a missing folder among others")
    t.messages_equal(h.parse_mbox(h.read_file(abox))[before:], [new_inbox, new_work],
                     "INBOX and Work fetched around the missing folder")
    t.check("Nope" in r.stderr and "check folders" in r.stderr, "the error names the folder and says what to do",
            r.stderr)
    t.check("\\Seen" in dv.flags("alice", "Work").get(max(dv.flags("alice", "Work"))),
            "Work's new message marked \\Seen")


h.main(test)
