#!/usr/bin/env python3
"""The MDA command is safe and bounded:
- a hostile envelope sender (%F) is only ever data: shell syntax in a
  Return-Path runs nothing, and an address with such characters reaches
  the MDA as MAILER-DAEMON; an ordinary one reaches it unchanged;
- %F or %T inside quotes, and an unquoted ';' or '#' in mda (the INI
  parser would cut the command there), are config errors (exit 5);
- an MDA that hangs after closing its output is killed at mda_timeout:
  exit 10, the message stays unseen;
- an MDA that delivers and exits 0 but leaves a child holding its output
  open is a success: delivered, \\Seen, and the run does not wait."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

RECORD_MDA = """#!/bin/sh
printf '%%s\\n' "$1" >> '%(args)s'
cat >> '%(out)s'
"""


def script(t, name, text):
    p = t.path(name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o755)
    return p


def test(t):
    dv = t.dovecot()
    args, out = t.path("mda-args"), t.path("mda-out")
    rec = script(t, "record-mda.sh", RECORD_MDA % dict(args=args, out=out))
    hostile = h.sample_message(1, 600, sender="`touch${IFS}PWNED1`$(touch${IFS}PWNED2)'x'@evil.example")
    honest = h.sample_message(2, 600, sender="first.last+tag=x@example.org")
    dv.append_many("alice", "INBOX", [hostile, honest])
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=rec + " %F")}))
    t.exit_code(r, h.EX_OK, "delivery with %F")
    pwned = [f for f in os.listdir(t.dir) if f.startswith("PWNED")] + \
            [f for f in os.listdir(os.path.join(t.dir, "home")) if f.startswith("PWNED")]
    t.eq(pwned, [], "shell syntax in the sender ran nothing")
    t.eq(h.read_file(args).decode().splitlines(), ["MAILER-DAEMON", "first.last+tag=x@example.org"],
         "the MDA got MAILER-DAEMON for the hostile sender, the honest one unchanged")

    for bad, what in ((rec + ' "%F"', "%F inside double quotes"),
                      ('"' + rec + ' \\"%F\\""', "a quoted value with quotes inside"),
                      (rec + " '%T'", "%T inside single quotes"),
                      (rec + " %F; true", "unquoted ; in mda"),
                      (rec + " %F # comment", "unquoted # in mda")):
        r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=bad)}))
        t.exit_code(r, h.EX_USAGE, what)
        t.check("[acct] mda:" in r.stderr, "%s: the error names section and key" % what, r.stderr)

    # Quoted, the same command with ';' is fine.
    dv.append("alice", "INBOX", h.sample_message(3, 500))
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda='"%s %%F; true"' % rec)}))
    t.exit_code(r, h.EX_OK, "a quoted mda with ';' delivers")

    # Hangs after closing its output: killed at mda_timeout.
    hang = script(t, "hang-mda.sh", "#!/bin/sh\ncat > /dev/null\nexec >/dev/null 2>&1\nsleep 60\n")
    uid = dv.append("alice", "INBOX", h.sample_message(4, 500))
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=hang, mda_timeout="2")}), timeout=40)
    t.exit_code(r, h.EX_DELIVERY, "a hanging MDA")
    t.check("mda_timeout" in r.stderr, "the error says mda_timeout", r.stderr)
    t.eq(dv.flags("alice").get(uid), set(), "the message stays unseen")

    # Delivers, exits 0, leaves a child holding the output pipe.
    bg_out = t.path("bg-out")
    bg = script(t, "bg-mda.sh", "#!/bin/sh\ncat > '%s'\n(sleep 20) &\nexit 0\n" % bg_out)
    r = t.run([], h.config({"acct": h.dovecot_keys(dv, deliver="mda", mda=bg, mda_timeout="10")}), timeout=40)
    t.exit_code(r, h.EX_OK, "an MDA that leaves a child behind")
    t.eq(dv.flags("alice").get(uid), {"\\Seen"}, "its message is \\Seen")
    t.messages_equal([h.read_file(bg_out)], [h.sample_message(4, 500)], "and it got the message")


h.main(test)
