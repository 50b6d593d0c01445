#!/usr/bin/env python3
"""The fake IMAP server's push support, tested with a raw socket client (no
mailfetch): IDLE announces deliver()ed mail with EXISTS/RECENT at once, on
every idling session with that folder selected (and only there); DONE, in
any case, gets OK; NOTIFY announces STATUS for a watched folder that is not
selected and EXISTS for the selected one, outside IDLE and while idling;
NOTIFY NONE stops it; each idle fault (no-done-reply, drop-after,
flood-exists, no-continuation, idle_fault_times) and drop_every behaves as
documented in tests/lib/fakeimap.py; several folders work per selected
folder; the classic one-folder API is unchanged (also with imaplib)."""

import imaplib
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h


class Client:
    """A line-based IMAP client that shows every line the server sends."""

    def __init__(self, t, srv, tls=False):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        if tls:
            s = t.certs.client_context().wrap_socket(s, server_hostname="localhost")
        self.s = s
        self.srv = srv
        self.buf = b""
        self.n = 0
        self.eof = False
        self.greeting = self.line()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def line(self, timeout=5.0):
        """The next line (no CRLF); None on timeout or EOF (self.eof)."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            self.s.settimeout(left)
            try:
                b = self.s.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                b = b""
            if not b:
                self.eof = True
                return None
            self.buf += b
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def lines(self, quiet=0.5, limit=10.0, first=3.0):
        """Every line until the server is quiet for `quiet` seconds (for the
        first line, `first` seconds: a loaded machine may be slow)."""
        out = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            l = self.line(quiet if out else first)
            if l is None:
                break
            out.append(l)
        return out

    def nothing(self, secs=0.3):
        """Lines sent within secs (a check that the server stays silent)."""
        return self.lines(secs, first=secs)

    def wait_eof(self, limit=5.0):
        """Lines until the server closes (self.eof) or limit seconds pass."""
        out = []
        deadline = time.monotonic() + limit
        while not self.eof and time.monotonic() < deadline:
            l = self.line(deadline - time.monotonic())
            if l is not None:
                out.append(l)
        return out

    def cmd(self, text, timeout=5.0):
        """(untagged lines, tagged line or None)."""
        self.n += 1
        tag = "A%d" % self.n
        self.send("%s %s" % (tag, text))
        unt = []
        while True:
            l = self.line(timeout)
            if l is None:
                return unt, None
            if l.startswith(tag.encode() + b" "):
                return unt, l
            unt.append(l)

    def ok(self, text):
        unt, tagged = self.cmd(text)
        if tagged is None or not tagged.split(b" ")[1:2] == [b"OK"]:
            raise AssertionError("%s: %r %r" % (text, unt, tagged))
        return unt

    def login(self):
        return self.ok('LOGIN %s "%s"' % (self.srv.user, self.srv.password.replace("\\", "\\\\").replace('"', '\\"')))

    def idle(self, timeout=3.0):
        """Send IDLE; returns (tag, first line or None)."""
        self.n += 1
        tag = "A%d" % self.n
        self.send("%s IDLE" % tag)
        return tag, self.line(timeout)


def sample(i, subject=None):
    return h.sample_message(i, 600, subject=subject)


def test_classic(t):
    """The one-folder API and behaviour of before, through imaplib too."""
    m1, m2 = sample(1), sample(2)
    srv = t.fake(messages=[m1, (m2, ("\\Seen",))], starttls="absent")
    t.eq(len(srv.mailbox), 2, "classic: srv.mailbox is the folder's list")
    t.eq(srv.next_uid, 3, "classic: srv.next_uid")
    u = srv.add(sample(3))
    t.eq(u, 3, "classic: srv.add() returns the next UID")
    c = imaplib.IMAP4("127.0.0.1", srv.port)
    t.check("IDLE" in c.capabilities and "NOTIFY" not in c.capabilities,
            "classic: IDLE offered by default, NOTIFY not", c.capabilities)
    c.login(srv.user, srv.password)
    typ, data = c.select("INBOX")
    t.eq((typ, data), ("OK", [b"3"]), "classic: SELECT INBOX: 3 messages")
    t.eq(c.untagged_responses.get("RECENT"), [b"0"], "classic: 0 RECENT without deliver()")
    typ, data = c.uid("SEARCH", None, "UNSEEN")
    t.eq(data, [b"1 3"], "classic: UID SEARCH UNSEEN")
    typ, data = c.uid("FETCH", "1", "(BODY.PEEK[])")
    t.eq(h.lf(data[0][1]), m1, "classic: UID FETCH 1 byte-exact")
    c.uid("STORE", "1", "+FLAGS.SILENT", "(\\Seen)")
    t.check("\\Seen" in srv.flags()[1], "classic: STORE reaches srv.flags()", srv.flags())
    typ, data = c.status("INBOX", "(MESSAGES UIDNEXT)")
    t.check(typ == "OK" and b"MESSAGES 3" in data[0] and b"UIDNEXT 4" in data[0]
            and b"UIDVALIDITY %d" % srv.uidvalidity in data[0], "classic: STATUS INBOX", data)
    typ, data = c.status("Whatever", "(MESSAGES)")
    t.check(typ == "OK" and data[0].startswith(b'"INBOX"'), "classic: STATUS of any name answers for the one folder",
            data)
    typ, data = c.select("Lists")
    t.eq(typ, "NO", "classic: no other folder")
    c.logout()
    srv.stop()
    t.check(not srv.notify_sets and srv.idle_starts() == 0, "classic: no NOTIFY, no IDLE recorded")

    srv = t.fake(idle=False, starttls="absent", folder="Work", messages=[m1])
    c = Client(t, srv)
    t.check(b"IDLE" not in c.greeting, "idle=False: no IDLE capability", c.greeting)
    c.login()
    t.eq(c.cmd("SELECT work")[1], b"A2 OK [READ-WRITE] SELECT completed", "folder=Work: SELECT, any case")
    t.eq(c.cmd("IDLE")[1], b"A3 BAD unknown command IDLE", "idle=False: IDLE is an unknown command")
    t.eq(c.cmd("NOTIFY NONE")[1], b"A4 BAD unknown command NOTIFY", "notify off: NOTIFY is an unknown command")
    u = srv.deliver(sample(5))
    t.eq(u, 2, "folder=Work: deliver() defaults to folder=")
    t.eq(c.cmd("NOOP"), ([b"* 2 EXISTS", b"* 1 RECENT"], b"A5 OK NOOP completed"),
         "not idling: the new mail comes before the next command's answer")
    c.close()


def test_idle(t):
    """IDLE over TLS: announcements at once, to the right sessions only."""
    srv = t.fake(tls="implicit", folders={"INBOX": [sample(1)], "Lists": [sample(2)]})
    a = Client(t, srv, tls=True)
    t.check(b"IDLE" in a.greeting, "IDLE in the greeting's capabilities", a.greeting)
    a.login()
    a.ok("SELECT INBOX")
    b = Client(t, srv, tls=True)  # idles, authenticated state only
    b.login()
    c = Client(t, srv, tls=True)  # INBOX selected, not idling
    c.login()
    c.ok("SELECT INBOX")
    d = Client(t, srv, tls=True)  # idles in Lists
    d.login()
    d.ok("SELECT Lists")

    tag, first = a.idle()
    t.eq(first, b"+ idling", "IDLE: + idling")
    btag, bfirst = b.idle()
    t.eq(bfirst, b"+ idling", "IDLE in the authenticated state too")
    dtag, _ = d.idle()
    h.wait_for(lambda: srv.idle_starts() == 3, 5)
    t0 = time.monotonic()
    uid = srv.deliver(sample(3), flags=("\\Flagged",))
    got = [a.line(3.0), a.line(3.0)]
    dt = time.monotonic() - t0
    t.eq(got, [b"* 2 EXISTS", b"* 1 RECENT"], "deliver(): * 2 EXISTS, * 1 RECENT on the idling session")
    t.check(dt < 2.0, "announced at once (%.3fs)" % dt)
    t.eq(uid, 2, "deliver() returns the UID")
    t.eq(srv.flags()[2], {"\\Flagged"}, "deliver(): flags kept")
    t.eq(b.nothing(0.3), [], "idling without a folder selected: nothing announced")
    t.eq(d.nothing(0.3), [], "idling in another folder: nothing announced")
    srv.deliver(sample(4))
    t.eq(a.lines(0.5), [b"* 3 EXISTS", b"* 2 RECENT"], "a second delivery announced on its own")
    srv.deliver(sample(5), folder="Lists")
    t.eq(d.lines(0.5), [b"* 2 EXISTS", b"* 1 RECENT"], "delivery to Lists announced in Lists")
    t.eq(a.nothing(0.3), [], "... and not in INBOX")
    a.send("done")
    t.eq(a.line(), ("%s OK Idle completed" % tag).encode(), "DONE (any case): OK Idle completed")
    unt = a.ok("UID SEARCH ALL")
    t.eq(unt, [b"* SEARCH 1 2 3"], "the delivered messages are in the selected folder")
    unt, tagged = c.cmd("NOOP")
    t.eq(unt, [b"* 2 EXISTS", b"* 1 RECENT", b"* 3 EXISTS", b"* 2 RECENT"],
         "not idling: each EXISTS before the next command's answer")
    b.send("DONE")
    t.eq(b.line(), ("%s OK Idle completed" % btag).encode(), "authenticated-state IDLE ends with OK")
    d.send("NOOP")
    t.eq(d.line(), ("%s BAD Expected DONE." % dtag).encode(), "anything but DONE: BAD Expected DONE.")
    t.eq(d.cmd("NOOP")[1], b"A4 OK NOOP completed", "... and the IDLE is over")

    unt = a.ok("SELECT INBOX")
    t.check(b"* 2 RECENT" in unt, "SELECT reports the RECENT count (2 since c's SELECT) and resets it", unt)
    tag, _ = a.idle()
    srv.deliver(sample(6))
    t.eq(a.lines(0.5), [b"* 4 EXISTS", b"* 1 RECENT"], "a re-issued IDLE announces again")
    a.send("DONE")
    a.line()
    u = Client(t, srv, tls=True)
    t.eq(u.cmd("IDLE")[1], b"A1 BAD not authenticated", "IDLE before login: BAD")
    for x in (a, b, c, d, u):
        x.close()
    srv.stop()
    starts = [d for (_c, k, d) in srv.events if k == "idle-start"]
    dones = [d for (_c, k, d) in srv.events if k == "idle-done"]
    t.eq(len(starts), 4, "four idle-start events", starts)
    t.eq(starts[0][1:], ("INBOX", None), "idle-start: (tag, folder, fault)")
    t.eq(starts[1][1], None, "idle-start in the authenticated state: no folder")
    t.eq(sorted(x[1] for x in dones), ["DONE", "DONE", "DONE", "bad"], "idle-done events", dones)
    t.eq([d for (c, k, d) in srv.events if k == "deliver"],
         [("INBOX", 2), ("INBOX", 3), ("Lists", 2), ("INBOX", 4)], "deliver events on connection 0")


def test_notify(t):
    msgs = {"INBOX": [sample(1)], "Lists": [sample(2), sample(3)], "Lists/Old": [], "Spam": []}
    srv = t.fake(notify=True, starttls="absent", folders=msgs)
    lists_v = srv.uidvalidity + 1
    a = Client(t, srv)
    t.check(b" NOTIFY" in a.greeting and b" IDLE" in a.greeting, "notify=True: NOTIFY (and IDLE) offered", a.greeting)
    a.login()
    a.ok("SELECT INBOX")
    unt = a.ok("NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) "
               "(mailboxes (INBOX Lists) (MessageNew MessageExpunge))")
    t.eq(unt, [b'* STATUS "Lists" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY %d)' % lists_v],
         "NOTIFY SET STATUS: STATUS of each watched folder but the selected one")
    spec = srv.notify_sets[-1]
    t.eq(spec[1]["filters"], [
        {"kind": "selected", "mailboxes": [], "events": ["MessageNew", "MessageExpunge"]},
        {"kind": "mailboxes", "mailboxes": ["INBOX", "Lists"], "events": ["MessageNew", "MessageExpunge"]}],
        "srv.notify_sets records the filters")
    t.check(spec[1]["status"] and spec[0] == 1, "... the STATUS option and the connection", spec)

    t0 = time.monotonic()
    srv.deliver(sample(4), folder="Lists")
    l = a.line(3.0)
    t.eq(l, b'* STATUS "Lists" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY %d)' % lists_v,
         "outside IDLE: new mail in Lists announced with STATUS")
    t.check(time.monotonic() - t0 < 2.0, "... at once")
    srv.deliver(sample(5))
    t.eq(a.lines(0.5), [b"* 2 EXISTS", b"* 1 RECENT"], "outside IDLE: new mail in the selected INBOX: EXISTS")
    srv.deliver(sample(6), folder="Spam")
    t.eq(a.nothing(0.3), [], "a folder not watched: nothing")
    tag, first = a.idle()
    t.eq(first, b"+ idling", "IDLE under NOTIFY")
    srv.deliver(sample(7), folder="Lists")
    srv.deliver(sample(8), folder="INBOX")
    t.eq(a.lines(0.5), [b'* STATUS "Lists" (MESSAGES 4 UIDNEXT 5 UIDVALIDITY %d)' % lists_v,
                        b"* 3 EXISTS", b"* 2 RECENT"], "while idling: STATUS for Lists, EXISTS for INBOX")
    a.send("DONE")
    t.eq(a.line(), ("%s OK Idle completed" % tag).encode(), "DONE")

    # Another session expunges in Lists: STATUS with the new count.
    b = Client(t, srv)
    b.login()
    b.ok("SELECT Lists")
    unt = b.ok("UID FETCH 2 (BODY.PEEK[])")
    t.check(b"* 2 FETCH (UID 2 BODY[] {" in unt[0] and b"message number 3" in b"".join(unt),
            "SELECT Lists: FETCH works in that folder", unt[:2])
    t.eq(b.ok("UID SEARCH ALL"), [b"* SEARCH 1 2 3 4"], "SELECT Lists: SEARCH in that folder")
    b.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    t.eq(a.lines(0.5), [b'* STATUS "Lists" (MESSAGES 3 UIDNEXT 5 UIDVALIDITY %d)' % lists_v],
         "MessageExpunge: another session's EXPUNGE in Lists announced with STATUS")
    t.eq(sorted(srv.flags("Lists")), [2, 3, 4], "srv.flags(folder)")
    t.eq(len(srv.messages("Lists")), 3, "srv.messages(folder)")
    unt, tagged = b.cmd("STATUS Nowhere (MESSAGES)")
    t.check(tagged is not None and b"NO [NONEXISTENT]" in tagged, "several folders: STATUS of an unknown name: NO",
            tagged)
    unt = b.ok("STATUS INBOX (MESSAGES)")
    t.check(unt and unt[0].startswith(b'* STATUS "INBOX" (MESSAGES 3 '), "STATUS of another folder", unt)

    # Forms: personal, inboxes, subtree; NONE; errors.
    a.ok("NOTIFY SET (subtree Lists (MessageNew MessageExpunge))")
    srv.deliver(sample(9), folder="Lists/Old")
    srv.deliver(sample(10), folder="Spam")
    got = a.lines(0.5)
    t.eq(got, [b'* STATUS "Lists/Old" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %d)' % (srv.uidvalidity + 2)],
         "subtree Lists: Lists/Old announced, Spam not; the selected INBOX not (no filter for it)")
    srv.deliver(sample(11))
    t.eq(a.nothing(0.3), [], "... INBOX news then waits for a command")
    t.eq(a.cmd("NOOP")[0], [b"* 4 EXISTS", b"* 3 RECENT"], "... and comes before its answer")
    a.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    srv.deliver(sample(12), folder="Spam")
    t.eq(len(a.lines(0.5)), 1, "personal: every folder")
    a.ok("NOTIFY SET (inboxes (MessageNew MessageExpunge))")
    srv.deliver(sample(13), folder="Spam")
    t.eq(a.nothing(0.3), [], "inboxes: not Spam")
    a.ok("UNSELECT")
    srv.deliver(sample(14))
    t.eq(len(a.lines(0.5)), 1, "inboxes: INBOX (not selected) announced")
    a.ok("NOTIFY NONE")
    t.eq(srv.notify_sets[-1], (1, None), "NOTIFY NONE recorded as None")
    srv.deliver(sample(15), folder="Lists")
    srv.deliver(sample(16))
    t.eq(a.nothing(0.5), [], "NOTIFY NONE: nothing more")
    unt, tagged = a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge Bogus))")
    t.check(tagged and b"NO [BADEVENT" in tagged, "an unknown event: NO [BADEVENT ...]", tagged)
    unt, tagged = a.cmd("NOTIFY SET (selected (MessageNew))")
    t.check(tagged and b" BAD " in tagged, "MessageNew without MessageExpunge: BAD", tagged)
    a.ok("NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge)) (personal NONE)")
    t.eq(srv.notify_sets[-1][1]["filters"][0].get("fetch"), "UID BODY.PEEK[HEADER]",
         "a fetch-att list after MessageNew is recorded")
    for x in (a, b):
        x.close()


def test_faults(t):
    # no-done-reply
    srv = t.fake(starttls="absent", idle_fault="no-done-reply")
    a = Client(t, srv)
    a.login()
    a.ok("SELECT INBOX")
    tag, first = a.idle()
    t.eq(first, b"+ idling", "no-done-reply: + idling")
    srv.deliver(sample(1))
    t.eq(a.lines(0.5), [b"* 1 EXISTS", b"* 1 RECENT"], "no-done-reply: mail still announced while idling")
    a.send("DONE")
    a.send("A9 NOOP")
    t.eq(a.nothing(1.0), [], "no-done-reply: DONE and what follows get no answer")
    t.check(not a.eof, "no-done-reply: the connection stays open")
    t.check(h.wait_for(lambda: b"A9 NOOP" in srv.received(), 3), "no-done-reply: the server still reads (logged)")
    t.eq([d for (_c, k, d) in srv.events if k == "idle-done"], [(tag, "DONE-unanswered")],
         "no-done-reply: idle-done (tag, DONE-unanswered)")
    a.close()
    t0 = time.monotonic()
    srv.stop()
    t.check(time.monotonic() - t0 < 3, "stop() is quick with a quiet session")

    # drop-after:SECONDS
    srv = t.fake(starttls="absent", idle_fault="drop-after:1.0")
    a = Client(t, srv)
    a.login()
    a.ok("SELECT INBOX")
    t0 = time.monotonic()
    a.idle()
    got = a.wait_eof(4.0)
    dt = time.monotonic() - t0
    t.check(a.eof, "drop-after: the connection is closed")
    t.check(0.9 <= dt < 3.0, "drop-after:1.0: closed after about 1s (%.2fs)" % dt)
    t.check(not any(l.startswith(b"* BYE") for l in got), "drop-after: no BYE", got)
    b = Client(t, srv)
    b.login()
    tag, _ = b.idle()
    time.sleep(0.1)
    b.send("DONE")
    t.eq(b.line(), ("%s OK Idle completed" % tag).encode(), "drop-after: DONE in time is answered")
    time.sleep(1.3)
    t.eq(b.cmd("NOOP")[1], b"A3 OK NOOP completed", "drop-after: an IDLE ended in time cancels the drop")
    b.close()
    srv.stop()
    t.check(any(k == "fault" and "drop-after" in d for (_c, k, d) in srv.events), "drop-after: a fault event")
    t.check(any(k == "idle-done" and d[1].startswith("disconnect") for (_c, k, d) in srv.events),
            "drop-after: idle-done (tag, disconnect: ...)")

    # flood-exists:N
    srv = t.fake(starttls="absent", idle_fault="flood-exists:40", messages=[sample(1), sample(2)])
    a = Client(t, srv)
    a.login()
    a.ok("SELECT INBOX")
    tag, first = a.idle()
    t.eq(first, b"+ idling", "flood-exists: + idling first")
    got = a.lines(0.5)
    t.eq(got, [b"* 2 EXISTS"] * 40, "flood-exists:40: 40 lines * 2 EXISTS")
    t.eq(len(srv.mailbox), 2, "flood-exists: no new mail")
    a.send("DONE")
    t.eq(a.line(), ("%s OK Idle completed" % tag).encode(), "flood-exists: DONE answered")
    a.close()

    # no-continuation, and idle_fault_times
    srv = t.fake(starttls="absent", idle_fault="no-continuation", idle_fault_times=1)
    a = Client(t, srv)
    a.login()
    a.ok("SELECT INBOX")
    tag, first = a.idle(1.0)
    t.eq(first, None, "no-continuation: no + idling")
    srv.deliver(sample(1))
    t.eq(a.nothing(0.5), [], "no-continuation: nothing announced")
    a.send("DONE")
    t.eq(a.lines(0.5), [("%s OK Idle completed" % tag).encode()], "no-continuation: DONE answered OK")
    tag, first = a.idle()
    t.eq(first, b"+ idling", "idle_fault_times=1: the second IDLE is normal")
    t.eq(a.lines(0.5), [b"* 1 EXISTS", b"* 1 RECENT"], "... and brings the news held back")
    a.send("DONE")
    t.eq(a.line(), ("%s OK Idle completed" % tag).encode(), "... DONE")
    t.eq([d[2] for (_c, k, d) in srv.events if k == "idle-start"], ["no-continuation", None],
         "idle-start records the fault")
    srv.idle_fault, srv.idle_fault_times = "flood-exists:3", None
    tag, first = a.idle()
    t.eq([first] + a.lines(0.5), [b"+ idling"] + [b"* 1 EXISTS"] * 3, "srv.idle_fault changed at run time")
    a.close()

    # drop_every
    srv = t.fake(tls="implicit", drop_every=0.8)
    a = Client(t, srv, tls=True)
    t0 = time.monotonic()
    a.login()
    a.ok("SELECT INBOX")
    got = a.wait_eof(4.0)
    dt = time.monotonic() - t0
    t.check(a.eof and 0.7 <= dt < 3.5, "drop_every=0.8: a connection waiting for a command is closed (%.2fs)" % dt)
    t.check(not any(l.startswith(b"* BYE") for l in got), "drop_every: no BYE", got)
    b = Client(t, srv, tls=True)
    b.login()
    b.idle()
    got = b.wait_eof(4.0)
    t.check(b.eof, "drop_every: an idling connection is closed too", got)
    t.eq(srv.connections(), 2, "drop_every: two connections")
    t.eq(sum(1 for (_c, k, d) in srv.events if k == "fault" and "drop_every" in d), 2, "drop_every: two fault events")
    t.check(h.wait_for(lambda: srv.kinds().count("closed") == 2, 3), "drop_every: both sessions ended")
    srv.stop()


def test(t):
    for part in (test_classic, test_idle, test_notify, test_faults):
        t0 = time.monotonic()
        part(t)
        t.log("%s: %.1fs" % (part.__name__, time.monotonic() - t0))


h.main(test)
