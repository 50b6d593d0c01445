#!/usr/bin/env python3
"""A server that drips a message body one byte a second, with timeout = 3:
every single read comes within the timeout, yet the low-speed rule ends the
run within a bound (exit 7, an error line saying the server sends too
slowly), nothing partial in the mbox, nothing marked; over plain TCP and
over TLS (one byte per TLS record).  Controls that must not be cut: a
server that pauses 2 s once mid-body and then sends at full speed, one
that thinks 2.5 s before every reply, and a slow but steady one (40
bytes/s).  And a DNS server that never answers (a UDP socket on 127.0.0.1
port 53 that reads nothing, in a network namespace of its own with only a
loopback): the lookup ends after `timeout` with exit 11, not after the
resolver's own timeout; skipped where unshare(1) cannot make the
namespaces."""

import os
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

TIMEOUT = 3
BOUND = 30  # seconds a drip may hold the run at most, with timeout = 3


def drip(interval):
    """send_literal: the head at once, then the body a byte per interval."""
    def send(sess, head, data):
        sess.send(head)
        for i in range(len(data)):
            if sess.srv._stop.wait(interval):
                return
            sess.send(data[i:i + 1])
        sess.send(b")\r\n")
    return send


def pause_once(seconds):
    """send_literal: half the body, one pause, then the rest at once."""
    def send(sess, head, data):
        half = len(data) // 2
        sess.send(head + data[:half])
        time.sleep(seconds)
        sess.send(data[half:] + b")\r\n")
    return send


def steady(chunk, interval):
    """send_literal: chunk bytes every interval seconds (a slow link)."""
    def send(sess, head, data):
        sess.send(head)
        for i in range(0, len(data), chunk):
            time.sleep(interval)
            sess.send(data[i:i + chunk])
        sess.send(b")\r\n")
    return send


def thinking(seconds, names):
    """handlers that answer each command in names after seconds of silence."""
    def slow(name):
        def handler(sess, tag, args):
            time.sleep(seconds)
            return getattr(sess, "cmd_" + name.replace(" ", "_").lower())(tag, args)
        return handler
    return {n: slow(n) for n in names}


def keys(srv, tls, mbox):
    k = h.fake_keys(srv, tls=tls, deliver="mbox", mbox=mbox, timeout=str(TIMEOUT))
    if tls == "none":
        k["allow_plaintext"] = "yes"
    return k


def test_drip(t, msg):
    for tls in ("none", "implicit"):
        what = "drip, tls = %s" % tls
        srv = t.fake(tls=tls, starttls="absent", messages=[msg], send_literal=drip(1.0))
        mbox = t.path("drip-%s.mbox" % tls)
        r = t.run([], h.config({"acct": keys(srv, tls, mbox)}), timeout=BOUND + 30)
        srv.stop()
        t.check(r.elapsed < BOUND, "%s: the run ended within %d s (took %.1f s)" % (what, BOUND, r.elapsed), r)
        t.exit_code(r, h.EX_SERVER, what)
        t.check("too slowly" in r.stderr and "mailfetch: acct" in r.stderr,
                "%s: the error line says the server sends too slowly" % what, r.stderr)
        t.check(srv.saw("FETCH"), "%s: the client did fetch" % what, srv.command_names())
        t.check(not srv.saw("STORE") and not srv.saw("EXPUNGE"), "%s: nothing marked" % what,
                srv.command_names())
        t.eq(srv.flags(), {1: set()}, "%s: flags untouched" % what)
        t.eq(h.read_file(mbox), b"", "%s: nothing partial in the mbox" % what)


def test_controls(t, msg, small):
    for what, fake, m in (
        ("one 2 s pause mid-body", {"send_literal": pause_once(2.0)}, msg),
        ("2.5 s of thinking before every reply",
         {"handlers": thinking(2.5, ("AUTHENTICATE", "SELECT", "UID SEARCH", "UID FETCH", "UID STORE"))}, msg),
        ("a steady 40 bytes/s", {"send_literal": steady(10, 0.25)}, small),
    ):
        for tls in ("none", "implicit"):
            w = "%s, tls = %s" % (what, tls)
            srv = t.fake(tls=tls, starttls="absent", messages=[m], **fake)
            mbox = t.path("control-%d.mbox" % len(t.results))
            r = t.run([], h.config({"acct": keys(srv, tls, mbox)}), timeout=BOUND + 30)
            srv.stop()
            t.exit_code(r, h.EX_OK, "%s: not cut" % w)
            t.messages_equal(h.parse_mbox(h.read_file(mbox)), [m], "%s: delivered" % w)
            t.check(srv.saw("STORE"), "%s: marked" % w, srv.command_names())


# Run inside `unshare -n -m`: loopback up, a resolv.conf naming 127.0.0.1,
# an nsswitch.conf asking files then DNS (no resolver daemon outside the
# namespace), then a UDP socket on port 53 that never reads, inherited by
# mailfetch, which this script becomes.
NETNS_WRAPPER = r'''
import os, socket, subprocess, sys
d = os.environ["MF_DNS_DIR"]
def run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    run("ip", "link", "set", "lo", "up")
    run("mount", "--bind", os.path.join(d, "resolv.conf"), "/etc/resolv.conf")
    run("mount", "--bind", os.path.join(d, "nsswitch.conf"), "/etc/nsswitch.conf")
    for nscd in ("/run/nscd", "/var/run/nscd"):
        if os.path.isdir(nscd):
            run("mount", "-t", "tmpfs", "tmpfs", nscd)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
except (OSError, subprocess.CalledProcessError) as e:
    sys.stderr.write("netns setup failed: %s\n" % e)
    sys.exit(99)
s.set_inheritable(True)
os.execv(sys.argv[1], sys.argv[1:])
'''


def test_dns(t):
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("ip") is None or shutil.which("mount") is None:
        t.log("note: slow DNS not tested (needs unshare, ip and mount)")
        return
    d = t.mkdir("dns")
    with open(os.path.join(d, "resolv.conf"), "w") as f:
        f.write("nameserver 127.0.0.1\n")
    with open(os.path.join(d, "nsswitch.conf"), "w") as f:
        f.write("hosts: files dns\n")
    ns = [unshare, "-n", "-m"] if os.geteuid() == 0 else [unshare, "-r", "-n", "-m"]
    probe = subprocess.run(ns + ["ip", "link", "set", "lo", "up"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        t.log("note: slow DNS not tested (unshare cannot make a network namespace here)")
        return
    wrapper = t.path("in-netns")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s %s -c '%s' \"$MAILFETCH_REAL\" \"$@\"\n" % (
            " ".join(ns), sys.executable, NETNS_WRAPPER.replace("'", "'\\''")))
    os.chmod(wrapper, 0o755)
    env = {"MF_DNS_DIR": d, "MAILFETCH_REAL": h.mailfetch_binary(),
           # The resolver would wait 20 s for the silent server by itself.
           "RES_OPTIONS": "timeout:20 attempts:1"}
    cfg = h.config({"acct": {"host": "mailfetch-slow-dns.invalid", "port": "993", "user": "alice",
                             "password": "x", "deliver": "mbox", "mbox": t.path("dns.mbox"),
                             "timeout": "2"}})
    r = t.run([], cfg, env=env, binary=wrapper, timeout=60)
    if "netns setup failed" in r.stderr:
        t.log("note: slow DNS not tested (%s)" % r.stderr.strip())
        return
    t.exit_code(r, h.EX_DNS, "silent DNS server")
    t.check(r.elapsed < 2 + 5, "silent DNS server: the lookup ended after timeout = 2 (took %.1f s)" % r.elapsed, r)
    t.check("cannot resolve mailfetch-slow-dns.invalid" in r.stderr and "within 2 s" in r.stderr,
            "silent DNS server: the error line says the lookup timed out", r.stderr)


def test(t):
    msg = h.sample_message(1, 800)
    small = b"From: a@example.org\nSubject: small\n\n" + b"slow but steady line\n" * 8
    test_drip(t, msg)
    test_controls(t, msg, small)
    test_dns(t)


h.main(test)
