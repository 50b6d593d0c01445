#!/usr/bin/env python3
"""No config value is silently altered by the INI parser.

iniparser joins a line ending in a backslash with the next one, ends an
unquoted value at ';' or '#', and drops what follows a closing quote.
Each is exit 5 naming the file, the section and the key (or the line),
before any login: `password = abc\\` then `def#ghi` must not log in with
"abcdef" (which here is the real password), `folders = INBOX; Lists` must
not poll INBOX alone, an mbox path with '#' must not be cut short, and a
comment ending in a backslash must not swallow the key below it.  The
same values in quotes are taken as written: --check-config shows them and
a run fetches both folders into the mbox whose name holds '#'."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

# carol's password is what iniparser makes of `abc\` + `def#ghi`; dave's
# needs single quotes (it holds ';', '#' and a double quote).
USERS = {"carol": "abcdef", "dave": 'pw;with#hash "q"'}


def test(t):
    dv = t.dovecot(users=USERS)
    inbox = [h.sample_message(1, 700), h.sample_message(2, 900)]
    lists = [h.sample_message(3, 800)]
    for user in USERS:
        dv.append_many(user, "INBOX", inbox)
        dv.append_many(user, "Lists;Old", lists)
    mbox = t.path("mail#1.mbox")

    def head(user, **extra):
        keys = {"host": "127.0.0.1", "port": dv.ssl_port, "tls": "implicit", "tls_ca_file": dv.certs.ca,
                "user": user, "timeout": "10", "deliver": "mbox"}
        keys.update(extra)
        return "[acct]\n" + "".join("%s = %s\n" % kv for kv in keys.items())

    def refused(label, text, names, user, secret=None):
        logins = dv.login_count(user)
        r = t.run([], text, config_name="fetchrc-%d" % len(t.results))
        t.exit_code(r, h.EX_USAGE, label)
        t.check(r.config_path + ": " in r.stderr, "%s: stderr names the file" % label, r.stderr)
        t.check(names in r.stderr, "%s: stderr names %s" % (label, names), r.stderr)
        t.check(r.stderr.count("\n") == 1, "%s: one line of error" % label, r.stderr)
        t.eq(dv.login_count(user), logins, "%s: no login" % label)
        t.check(not os.path.exists(mbox), "%s: no mbox written" % label)
        if os.path.exists(mbox):
            os.unlink(mbox)
        if secret is not None:
            t.check(secret.encode() not in r.out + r.err, "%s: the value is not printed" % label)

    # The joined line is "password = abcdef": the old loader logged in.
    text = head("carol", mbox='"%s"' % mbox)
    refused("password continued by a backslash", text + "password = abc\\\ndef#ghi\n",
            "[acct] password: line %d ends in a backslash" % (text.count("\n") + 1), "carol", secret="def#ghi")
    refused("folders = INBOX; Lists",
            head("carol", mbox='"%s"' % mbox, folders="INBOX; Lists") + "password = abcdef\n",
            "[acct] folders: the value holds ';'", "carol")
    refused("unquoted '#' in the mbox path",
            head("carol", mbox=mbox) + "password = abcdef\n",
            "[acct] mbox: the value holds '#'", "carol")
    refused("unquoted ';' in a password",
            head("dave", mbox='"%s"' % mbox) + "password = %s\n" % USERS["dave"],
            "[acct] password: the value holds ';'", "dave", secret="with#hash")
    refused("text after a quoted value",
            head("carol", mbox='"%s"' % mbox, folders='"INBOX", Lists;Old') + "password = abcdef\n",
            "[acct] folders: a quoted value must be one quoted string", "carol")
    # A comment ending in a backslash would swallow "keep = no".
    text = head("carol", mbox='"%s"' % mbox) + "password = abcdef\n"
    refused("comment ending in a backslash", text + "# was: keep = yes \\\nkeep = no\n",
            ": line %d ends in a backslash" % (text.count("\n") + 1), "carol")
    text = head("carol", mbox='"%s"' % mbox, keep="no") + "password = abcdef\n"
    refused("a key set twice", text + "keep = yes\n",
            "[acct] keep: set on line %d and again on line %d" % (text.count("\n") - 1, text.count("\n") + 1),
            "carol")

    # Quoted, the same values are taken as they are written.
    good = head("dave", mbox='"%s"' % mbox, folders='"INBOX, Lists;Old"') + \
        "password = '%s' ; single quotes: it holds a double quote\n" % USERS["dave"]
    r = t.run(["--check-config"], good)
    t.exit_code(r, h.EX_OK, "quoted values: --check-config")
    t.check("folders = INBOX, Lists;Old\n" in r.output, "--check-config: two folders, one with ';'", r.output)
    t.check("mbox = %s\n" % mbox in r.output, "--check-config: the mbox path with '#' whole", r.output)
    t.no_secrets(r.out + r.err, "dave", USERS["dave"], "--check-config")

    r = t.run([], good)
    t.exit_code(r, h.EX_OK, "quoted values: a run")
    t.messages_equal(h.parse_mbox(h.read_file(mbox)), inbox + lists,
                     "INBOX and Lists;Old fetched into the mbox whose name holds '#'")
    t.no_secrets(r.out + r.err, "dave", USERS["dave"], "the run")


h.main(test)
