#!/usr/bin/env python3
"""Shell completion (contrib/completion): bash for real, by calling the
completion function with COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT set as
readline sets them; zsh for real too when zsh is installed (through
zsh/zpty, an interactive zsh and its TAB key), else that part is skipped and
says so.  Checked: every option of src/main.c's longopts table, option
values (files, accounts, nothing), and account names from the config named
with -c, from $XDG_CONFIG_HOME/mailfetch/fetchrc and from ~/.fetchrc, never
[defaults]; names are read with mailfetch --check-config, or from the
[section] lines of a config with errors; nothing else is ever run."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("srcdir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."), "tests", "lib"))
import harness as h

BASH_FILE = os.path.join(h.SRCDIR, "contrib", "completion", "mailfetch.bash")
ZSH_FILE = os.path.join(h.SRCDIR, "contrib", "completion", "_mailfetch")


def main_c_options():
    """Every option mailfetch takes, read from src/main.c: the long names of
    longopts and the letters of the getopt_long string."""
    with open(os.path.join(h.SRCDIR, "src", "main.c")) as f:
        text = f.read()
    table = re.search(r"struct option longopts\[\] = \{(.*?)\n\t\};", text, re.S)
    longs = ["--" + n for n in re.findall(r'\{ "([a-z0-9-]+)",', table.group(1))]
    letters = re.search(r'getopt_long\(argc, argv, "([^"]*)"', text).group(1)
    shorts = ["-" + c for c in letters if c.isalnum()]
    return longs, shorts


ACCOUNT = "host = 127.0.0.1\nport = 9\nuser = {user}\npassword_command = echo nope\n"


def write(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class Shells:
    """The environment both shells run in: a home of their own, the test's
    directory as the working directory, and a "mailfetch" on PATH that logs
    every run of it before it runs the real binary."""

    def __init__(self, t):
        self.t = t
        self.home = t.mkdir("home")
        self.xdg = t.mkdir("xdg")
        self.bin = t.mkdir("bin")
        self.cwd = t.mkdir("cwd")
        self.runlog = t.path("mailfetch-runs.log")
        wrapper = os.path.join(self.bin, "mailfetch")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nprintf "%%s\\n" "$*" >> \'%s\'\nexec \'%s\' "$@"\n'
                    % (self.runlog, h.mailfetch_binary()))
        os.chmod(wrapper, 0o755)

    def env(self, xdg=None, path=True):
        env = {k: v for k, v in os.environ.items()
               if k not in ("XDG_CONFIG_HOME", "BASH_ENV", "ENV", "ZDOTDIR", "CDPATH")}
        env["HOME"] = self.home
        env["XDG_CONFIG_HOME"] = self.xdg if xdg is None else xdg
        env["PATH"] = (self.bin + ":" if path else "") + os.environ.get("PATH", "/usr/bin:/bin")
        env["LC_ALL"] = "C"
        return env

    def runs(self):
        try:
            with open(self.runlog) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


BASH_DRIVER = r'''
source "$1" || exit 3
shift
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
COMP_KEY=9
complete -p mailfetch >/dev/null || exit 4
_mailfetch "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def bash_complete(sh, words, **env_kw):
    """COMPREPLY of bash for the command line words (the last one is being
    completed), as a sorted list."""
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", BASH_FILE] + words,
                       cwd=sh.cwd, env=sh.env(**env_kw), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if p.returncode != 0 or p.stderr:
        sh.t.check(False, "bash completion of %r runs cleanly" % words,
                   "exit %d, stderr: %s" % (p.returncode, p.stderr.decode(errors="replace")))
    return sorted(x for x in p.stdout.decode().split("\n") if x)


def test_bash(t, sh, longs, shorts):
    t.check(subprocess.run(["bash", "-n", BASH_FILE]).returncode == 0, "bash -n: the bash completion parses")

    # Options.
    t.eq(bash_complete(sh, ["mailfetch", "--sto"]), ["--store-password"], "bash: --sto completes --store-password")
    t.eq(bash_complete(sh, ["mailfetch", "--c"]), ["--check", "--check-config", "--config"],
         "bash: --c offers --check --check-config --config")
    got = bash_complete(sh, ["mailfetch", "-"])
    t.eq(sorted(set(longs + shorts) - set(got)), [], "bash: - offers every option of main.c (long and short)")
    t.eq(sorted(set(got) - set(longs + shorts)), [], "bash: - offers no option main.c does not know")
    t.eq(bash_complete(sh, ["mailfetch", "--forget"]), ["--forget-password"], "bash: --forget completes")
    t.eq(bash_complete(sh, ["mailfetch", "--imp"]), ["--import-fetchmailrc"], "bash: --imp completes")
    t.eq(bash_complete(sh, ["mailfetch", "--outp"]), ["--output"], "bash: --outp completes")

    # Accounts: the XDG config (valid: read by --check-config).
    write(os.path.join(sh.xdg, "mailfetch", "fetchrc"),
          "; the XDG one\n[defaults]\nkeep = yes\n\n[Xdg-Work]\n" + ACCOUNT.format(user="a") +
          "# [commented]\n[xdg_home]\n" + ACCOUNT.format(user="b"))
    t.eq(bash_complete(sh, ["mailfetch", ""]), ["xdg-work", "xdg_home"],
         "bash: ACCOUNT from $XDG_CONFIG_HOME/mailfetch/fetchrc, lower case, no [defaults], no comment")
    t.eq(bash_complete(sh, ["mailfetch", "-v", "X"]), ["xdg-work", "xdg_home"],
         "bash: account names match without regard to case")
    t.eq(bash_complete(sh, ["mailfetch", "xdg-work", "xdg_"]), ["xdg_home"], "bash: a second ACCOUNT")
    t.check(any("--check-config -c %s" % os.path.join(sh.xdg, "mailfetch", "fetchrc") in r for r in sh.runs()),
            "bash: names read with mailfetch --check-config -c FILE", "\n".join(sh.runs()))

    # Accounts: the config named with -c wins, in every spelling.
    other = write(os.path.join(sh.cwd, "other.rc"),
                  "[defaults]\nmda = /bin/cat\n[Work]\n" + ACCOUNT.format(user="w") +
                  "[ home-2 ]\n" + ACCOUNT.format(user="h"))
    for words in (["-c", "other.rc"], ["--config", "other.rc"], ["--config=other.rc"],
                  ["--config", "=", "other.rc"], ["-cother.rc"], ["-vc", "other.rc"], ["-c", other, "-v"]):
        t.eq(bash_complete(sh, ["mailfetch"] + words + [""]), ["home-2", "work"],
             "bash: ACCOUNT from the config of %s" % " ".join(words))
    t.eq(bash_complete_at(sh, ["mailfetch", "", "-c", "other.rc"], 1), ["home-2", "work"],
         "bash: ACCOUNT from the config of a -c after the cursor")
    t.eq(bash_complete(sh, ["mailfetch", "-c", "other.rc", "w"]), ["work"], "bash: -c other.rc w -> work")
    t.eq(bash_complete(sh, ["mailfetch", "--store-password", ""]), ["xdg-work", "xdg_home"],
         "bash: --store-password ACCOUNT offers accounts")
    t.eq(bash_complete(sh, ["mailfetch", "-c", "other.rc", "--forget-password", "H"]), ["home-2"],
         "bash: --forget-password ACCOUNT offers accounts of -c's config")
    t.eq(bash_complete(sh, ["mailfetch", "--store-password=xdg-"]), ["xdg-work"],
         "bash: --store-password=ACCOUNT in one word offers accounts")
    t.eq(bash_complete(sh, ["mailfetch", "--store-password", "=", ""]), ["xdg-work", "xdg_home"],
         "bash: --store-password=ACCOUNT offers accounts")
    t.eq(bash_complete(sh, ["mailfetch", "--store-password", "work", ""]), [],
         "bash: nothing after --store-password ACCOUNT")

    # Values that are files, or nothing.
    t.eq(bash_complete(sh, ["mailfetch", "-c", ""]), ["other.rc"], "bash: -c FILE offers files")
    t.eq(bash_complete(sh, ["mailfetch", "--config", "oth"]), ["other.rc"], "bash: --config FILE offers files")
    t.eq(bash_complete(sh, ["mailfetch", "--lockfile", ""]), ["other.rc"], "bash: --lockfile FILE offers files")
    t.eq(bash_complete(sh, ["mailfetch", "--import-fetchmailrc", "-o", ""]), ["other.rc"],
         "bash: -o FILE offers files")
    t.eq(bash_complete(sh, ["mailfetch", "--import-fetchmailrc", ""]), ["other.rc"],
         "bash: --import-fetchmailrc [FILE] offers files, not accounts")
    write(os.path.join(sh.home, "home-file"), "")
    t.eq(bash_complete(sh, ["mailfetch", "-c", "~/"]), ["~/home-file"], "bash: -c ~/ looks in $HOME")
    os.unlink(os.path.join(sh.home, "home-file"))
    t.eq(bash_complete(sh, ["mailfetch", "--limit", ""]), [], "bash: --limit SIZE offers nothing")
    t.eq(bash_complete(sh, ["mailfetch", "--fetch-limit", ""]), [], "bash: --fetch-limit N offers nothing")
    t.eq(bash_complete(sh, ["mailfetch", "--", ""]), ["xdg-work", "xdg_home"], "bash: after --, accounts")
    t.eq(bash_complete(sh, ["mailfetch", "--", "-"]), [], "bash: after --, no options")

    # ~/.fetchrc when there is no XDG config; a relative XDG_CONFIG_HOME
    # does not count; nothing at all without a config.
    empty_xdg = sh.t.mkdir("empty-xdg")
    t.eq(bash_complete(sh, ["mailfetch", ""], xdg=empty_xdg), [], "bash: no config, no accounts")
    write(os.path.join(sh.home, ".fetchrc"), "[dot]\n" + ACCOUNT.format(user="d"))
    t.eq(bash_complete(sh, ["mailfetch", ""], xdg=empty_xdg), ["dot"], "bash: ACCOUNT from ~/.fetchrc")
    write(os.path.join(sh.home, ".config", "mailfetch", "fetchrc"), "[dotconfig]\n" + ACCOUNT.format(user="c"))
    t.eq(bash_complete(sh, ["mailfetch", ""], xdg="xdg"), ["dotconfig"],
         "bash: a relative XDG_CONFIG_HOME counts not: ~/.config/mailfetch/fetchrc")
    t.eq(bash_complete(sh, ["mailfetch", ""], xdg=""), ["dotconfig"],
         "bash: an empty XDG_CONFIG_HOME: ~/.config/mailfetch/fetchrc")

    # A config mailfetch refuses: the [section] lines all the same.
    broken = write(sh.t.path("rc", "broken.rc"),
          "; broken\n[defaults]\nkeep = maybe\n  [ Broken-One ]  \nhost = x\n#[not-this]\n;[nor-this]\n"
          "[two]\nnokey = 1\n[Two]\n[defaults]\n")
    t.eq(bash_complete(sh, ["mailfetch", "-c", broken, ""]), ["broken-one", "two"],
         "bash: a config with errors: its sections, trimmed, lower case, once each, no [defaults]")
    openrc = write(sh.t.path("rc", "open.rc"), "[perm]\nhost = x\nuser = u\npassword = secret\n", mode=0o644)
    t.eq(bash_complete(sh, ["mailfetch", "-c", openrc, ""]), ["perm"],
         "bash: a config mailfetch refuses for its mode: its sections")
    t.eq(bash_complete(sh, ["mailfetch", "-c", broken, ""], path=False), ["broken-one", "two"],
         "bash: no mailfetch on PATH: the sections")
    t.eq(bash_complete(sh, ["mailfetch", "-c", "missing.rc", ""]), [], "bash: a missing -c file: no accounts")

    # A name with a blank comes back quoted for the line.
    blank = write(sh.t.path("rc", "blank.rc"), "[my box]\n" + ACCOUNT.format(user="m"))
    t.eq(bash_complete(sh, ["mailfetch", "-c", blank, "m"]), ["my\\ box"], "bash: a name with a blank, quoted")

    bad = [r for r in sh.runs() if not r.startswith("--check-config -c ")]
    t.eq(bad, [], "bash: mailfetch was only ever run as --check-config -c FILE")


def bash_complete_at(sh, words, cword):
    """COMPREPLY with the cursor on words[cword] (words after it too)."""
    driver = BASH_DRIVER.replace("COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))", "COMP_CWORD=%d" % cword)
    driver = driver.replace('COMP_POINT=${#COMP_LINE}', 'COMP_POINT=%d' % len(" ".join(words[:cword + 1])))
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", driver, "bash", BASH_FILE] + words,
                       cwd=sh.cwd, env=sh.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return sorted(x for x in p.stdout.decode().split("\n") if x)


# An interactive zsh on a pseudo-terminal (zsh/zpty), compinit with the
# completion's directory first in $fpath; compadd is wrapped to log every
# match it adds to $__out.  Each line is typed with a TAB, then wiped, then
# a command that marks it done.
ZSH_DRIVER = r'''
zmodload zsh/zpty || exit 3
compdir=$1 outdir=$2; shift 2
zpty z zsh -f -i || exit 4
zpty -w z "PS1='' PS2='' RPS1=''; fpath=(${(q)compdir} \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z "zstyle ':completion:*' insert-tab false; zstyle ':completion:*' menu no; bindkey -e; bindkey '^I' complete-word"
zpty -w z "compadd() { if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd \"\$@\"; return; fi; local -a __hits; builtin compadd -A __hits \"\$@\"; (( \$#__hits )) && print -rl -- \$__hits >> \$__out; builtin compadd \"\$@\"; }"
typeset -i n=0
# Line 0 warms up: ZLE may drop what was typed before it started.
for l in 'mailfetch --ver' "$@"; do
  zpty -w z "__out=${(q)outdir}/$n.out; : > \$__out"
  zpty -w -n z "$l"$'\t'
  zpty -w -n z $'\C-e\C-u'
  zpty -w z ": > ${(q)outdir}/$n.done"
  for i in {1..200}; do [[ -e $outdir/$n.done ]] && break; sleep 0.05; done
  [[ -e $outdir/$n.done ]] || print -r "timeout: $l"
  (( n++ ))
done
zpty -d z
'''


def test_zsh(t, sh, longs, shorts):
    t.check(subprocess.run(["zsh", "-n", ZSH_FILE]).returncode == 0, "zsh -n: the zsh completion parses")
    p = subprocess.run(["zsh", "-f", "-c", 'autoload -U compinit; compinit -u -D; source "$1"; '
                        'print -r -- "${_comps[mailfetch]}"', "zsh", ZSH_FILE],
                       cwd=sh.cwd, env=sh.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    t.eq((p.stdout.decode().strip(), p.stderr.decode()), ("_mailfetch", ""),
         "zsh: sourced after compinit, it registers _mailfetch for mailfetch")

    compdir = t.mkdir("zsh-functions")
    shutil.copy(ZSH_FILE, compdir)
    cases = [
        ("mailfetch --sto", ["--store-password"], "zsh: --sto completes --store-password"),
        ("mailfetch --c", ["--check", "--check-config", "--config"], "zsh: --c offers --check --check-config --config"),
        ("mailfetch --", "longs", "zsh: --"),
        ("mailfetch -", "all", "zsh: -"),
        ("mailfetch ", ["xdg-work", "xdg_home"], "zsh: ACCOUNT from $XDG_CONFIG_HOME/mailfetch/fetchrc, no [defaults]"),
        ("mailfetch X", ["xdg-work", "xdg_home"], "zsh: account names match without regard to case"),
        ("mailfetch -c other.rc ", ["home-2", "work"], "zsh: ACCOUNT from the config of -c"),
        ("mailfetch --config=other.rc ", ["home-2", "work"], "zsh: ACCOUNT from the config of --config="),
        ("mailfetch -vc other.rc w", ["work"], "zsh: ACCOUNT from the config of -vc"),
        ("mailfetch --store-password ", ["xdg-work", "xdg_home"], "zsh: --store-password ACCOUNT offers accounts"),
        ("mailfetch -c other.rc --forget-password=", ["home-2", "work"],
         "zsh: --forget-password=ACCOUNT offers accounts of -c's config"),
        ("mailfetch -c %s " % t.path("rc", "broken.rc"), ["broken-one", "two"],
         "zsh: a config with errors: its sections"),
        ("mailfetch -c ", ["other.rc"], "zsh: -c FILE offers files"),
        ("mailfetch --lockfile ", ["other.rc"], "zsh: --lockfile FILE offers files"),
        ("mailfetch --import-fetchmailrc -o ", ["other.rc"], "zsh: -o FILE offers files"),
        ("mailfetch --import-fetchmailrc ", ["other.rc"], "zsh: --import-fetchmailrc [FILE] offers files"),
        ("mailfetch --limit ", [], "zsh: --limit SIZE offers nothing"),
        ("mailfetch --fetch-limit ", [], "zsh: --fetch-limit N offers nothing"),
    ]
    os.unlink(sh.runlog)
    outdir = t.mkdir("zsh-out")
    p = subprocess.run(["zsh", "-f", "-c", ZSH_DRIVER, "zsh", compdir, outdir] + [c[0] for c in cases],
                       cwd=sh.cwd, env=sh.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    t.check(p.returncode == 0 and b"timeout" not in p.stdout, "zsh: the pty session ran",
            p.stdout.decode(errors="replace"))
    for n, (line, want, what) in enumerate(cases, 1):
        try:
            with open(os.path.join(outdir, "%d.out" % n)) as f:
                got = sorted(set(x for x in f.read().split("\n") if x))
        except FileNotFoundError:
            got = None
        if isinstance(want, str):
            known = longs if want == "longs" else longs + shorts
            t.eq(sorted(set(known) - set(got or [])), [], "%s offers every %soption of main.c" % (
                what, "long " if want == "longs" else ""))
            t.eq(sorted(set(got or []) - set(known)), [], "%s offers no option main.c does not know" % what)
        else:
            t.eq(got, want, what + " (%r)" % line)
    bad = [r for r in sh.runs() if not r.startswith("--check-config -c ")]
    t.check(sh.runs() != [], "zsh: names read with mailfetch --check-config -c FILE")
    t.eq(bad, [], "zsh: mailfetch was only ever run as --check-config -c FILE")


def test(t):
    if shutil.which("bash") is None:
        raise h.Skip("bash not installed")
    longs, shorts = main_c_options()
    t.require(len(longs) >= 18 and "-c" in shorts, "the options of src/main.c read", (longs, shorts))
    sh = Shells(t)
    test_bash(t, sh, longs, shorts)
    if shutil.which("zsh") is None:
        t.log("SKIP (zsh part): zsh is not installed; the zsh completion was not tested")
        return
    test_zsh(t, sh, longs, shorts)


h.main(test)
