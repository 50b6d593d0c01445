#!/usr/bin/env python3
"""An MDA that fails for the second message of three (exit 75,
EX_TEMPFAIL): the first is delivered and \\Seen; a temporary failure
means the MDA will not do better for the next message, so nothing more is
delivered this run: the second and third stay unseen, exit 10, and the
run says so.  The next run (MDA now works) delivers both and exits 0.  A
hard MDA failure (exit 1) fails only its own message.  The MDA gets no password in its environment and no
socket among its open files."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

MDA = r"""#!/bin/sh
# Test MDA: keeps each message as a file in OUT; fails for a marked message
# while the ALLOW file does not exist.
OUT='%(out)s'
ALLOW='%(allow)s'
tmp=$(mktemp "$OUT/.tmp.XXXXXX") || exit 74
cat > "$tmp" || exit 74
env > '%(envdir)s'/env.$$
for f in /proc/$$/fd/*; do readlink "$f"; done > '%(envdir)s'/fds.$$ 2>/dev/null
if [ ! -e "$ALLOW" ]; then
    if grep -q '^X-Test-Marker: TEMPFAIL-ME' "$tmp"; then rm -f "$tmp"; echo "test mda: try later" >&2; exit 75; fi
    if grep -q '^X-Test-Marker: FAIL-ME' "$tmp"; then rm -f "$tmp"; echo "test mda: failed" >&2; exit 1; fi
fi
mv "$tmp" "$OUT/msg.$(date +%%s%%N).$$"
"""


def test(t):
    dv = t.dovecot()
    out = t.mkdir("delivered")
    envdir = t.mkdir("mdaenv")
    allow = t.path("allow")
    mda = t.path("mda.sh")
    with open(mda, "w") as f:
        f.write(MDA % dict(out=out, allow=allow, envdir=envdir))
    os.chmod(mda, 0o755)

    m1 = h.sample_message(1, 900)
    m2 = h.sample_message(2, 3000, marker="TEMPFAIL-ME")
    m3 = h.sample_message(3, 1500)
    u1, u2, u3 = dv.append_many("alice", "INBOX", [m1, m2, m3])
    cfg = h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=mda)})

    r = t.run([], cfg)
    t.exit_code(r, h.EX_DELIVERY, "run 1, MDA exit 75 for one message")
    t.messages_equal(sorted(h.read_maildir_like(out)), [m1], "run 1: the one before it delivered, nothing after")
    fl = dv.flags("alice")
    t.eq((fl.get(u1), fl.get(u2), fl.get(u3)), ({"\\Seen"}, set(), set()),
         "run 1: the delivered one \\Seen, the failed one and the rest not")
    t.check("delivering nothing more this run" in r.stderr, "run 1 says it stopped delivering", r.stderr)

    with open(allow, "w"):
        pass
    r = t.run([], cfg)
    t.exit_code(r, h.EX_OK, "run 2, MDA works again")
    t.messages_equal(sorted(h.read_maildir_like(out)), sorted([m1, m2, m3]), "run 2: each message exactly once")
    t.check(all("\\Seen" in f for f in dv.flags("alice").values()), "run 2: all \\Seen")

    # A hard failure (exit 1) keeps the message too.
    os.unlink(allow)
    m4 = h.sample_message(4, 700, marker="FAIL-ME")
    m5 = h.sample_message(5, 800)
    u4, u5 = dv.append_many("alice", "INBOX", [m4, m5])
    r = t.run([], cfg)
    t.exit_code(r, h.EX_DELIVERY, "run 3, MDA exit 1")
    t.eq(dv.flags("alice").get(u4), set(), "run 3: the failed message stays unseen")
    t.eq(dv.flags("alice").get(u5), {"\\Seen"}, "run 3: the next one is delivered all the same")
    t.messages_equal(sorted(h.read_maildir_like(out)), sorted([m1, m2, m3, m5]), "run 3: only the next one is new")

    # What the MDA saw.
    pw = dv.users["alice"].encode()
    envs = [h.read_file(os.path.join(envdir, n)) for n in os.listdir(envdir) if n.startswith("env.")]
    t.check(envs, "the MDA ran")
    t.check(not any(pw in e for e in envs), "no password in the MDA's environment")
    fds = [h.read_file(os.path.join(envdir, n)) for n in os.listdir(envdir) if n.startswith("fds.")]
    t.check(not any(b"socket:" in f for f in fds), "no socket open in the MDA",
            b"\n--\n".join(fds).decode(errors="replace"))
    t.check(not any(b"/.local/state/" in f or b"fetchrc" in f for f in fds),
            "no lock, state or config file open in the MDA", b"\n--\n".join(fds).decode(errors="replace"))


h.main(test)
