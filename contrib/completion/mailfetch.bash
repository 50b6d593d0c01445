# bash completion for mailfetch                               -*- shell-script -*-
#
# Completes the options (src/main.c: usage() and longopts), their values
# (files for -c/--config, --lockfile, --logfile, -o/--output and --import-fetchmailrc;
# account names for --store-password and --forget-password; nothing for
# --limit and --fetch-limit), and ACCOUNT arguments: the section names of
# the config file other than [defaults].  The config file is the one given
# with -c/--config on the line being completed, else
# $XDG_CONFIG_HOME/mailfetch/fetchrc (XDG_CONFIG_HOME only when absolute;
# default ~/.config/mailfetch/fetchrc) if it exists, else ~/.fetchrc, as
# mailfetch itself chooses (config_default_path in src/config.c).
#
# Self-contained: needs bash 4 and nothing of the bash-completion package.
# Installed as "mailfetch" in the bash-completion directory, where
# bash-completion loads it on demand; or source it from ~/.bashrc.
# Nothing here connects anywhere: the names come from
# "mailfetch --check-config -c FILE" (which reads the file only), and from
# the [section] lines of the file when that fails (a config with errors).

# Every option, short and long: keep in step with longopts in src/main.c.
_mailfetch_options='-c --config -v --verbose -q --quiet -k --keep --delete
-a --all --no-mail-ok --json -d --daemon --idle --lockfile --logfile --syslog --check-config --check --limit --fetch-limit
--import-fetchmailrc --store-password --forget-password -o --output
-h --help -V --version'

# Options that take a value in the next word (or after "=").
_mailfetch_needs_value() {
    case $1 in
    -c | --config | --lockfile | --logfile | --limit | --fetch-limit | --store-password | \
        --forget-password | -o | --output | -d | --daemon) return 0 ;;
    esac
    return 1
}

# A word as the shell would see it, for reading the file it names: a
# leading ~/ made $HOME/, and one level of quotes taken off.
_mailfetch_unquote() {
    local w=$1
    case $w in
    \'*\') w=${w:1:${#w}-2} ;;
    \"*\") w=${w:1:${#w}-2} ;;
    esac
    case $w in
    "~") w=$HOME ;;
    "~/"*) w=$HOME/${w#"~/"} ;;
    esac
    printf '%s\n' "$w"
}

# The config file mailfetch would read for words $1..: the last -c/--config
# given, else the default.
_mailfetch_config_file() {
    local file="" w i=0
    local -a words=("$@")
    while ((i < ${#words[@]})); do
        w=${words[i]}
        case $w in
        --) break ;;
        --config=*) file=${w#--config=} ;;
        --config | -c)
            # "--config", "=", "FILE" when = is a word break.
            if [[ ${words[i + 1]-} == "=" ]]; then
                ((i++))
            fi
            file=${words[i + 1]-}
            ((i++))
            ;;
        --*)
            if _mailfetch_needs_value "$w"; then
                [[ ${words[i + 1]-} == "=" ]] && ((i++))
                ((i++))
            fi
            ;;
        -?*)
            # A cluster of short options: -vc FILE, -cFILE, -vo FILE.
            local j c
            for ((j = 1; j < ${#w}; j++)); do
                c=${w:j:1}
                if [[ $c == c || $c == o || $c == d ]]; then
                    if ((j + 1 < ${#w})); then
                        [[ $c == c ]] && file=${w:j+1}
                    else
                        [[ $c == c ]] && file=${words[i + 1]-}
                        ((i++))
                    fi
                    break
                fi
            done
            ;;
        esac
        ((i++))
    done
    if [[ -n $file ]]; then
        _mailfetch_unquote "$file"
        return
    fi
    local first
    if [[ ${XDG_CONFIG_HOME-} == /* ]]; then
        first=$XDG_CONFIG_HOME/mailfetch/fetchrc
    else
        first=${HOME-}/.config/mailfetch/fetchrc
    fi
    if [[ -e $first ]]; then
        printf '%s\n' "$first"
    elif [[ -e ${HOME-}/.fetchrc ]]; then
        printf '%s\n' "${HOME-}/.fetchrc"
    fi
}

# The account names of config file $2, one a line, lower-cased as mailfetch
# sees them; $1 is the mailfetch to ask.
_mailfetch_account_names() {
    local cmd=$1 file=$2 out
    [[ -n $file && -f $file && -r $file ]] || return
    # --check-config reads and checks the file and prints "[name]" for each
    # account; it never connects nor runs password_command.
    if [[ -n $cmd ]] && type -P -- "$cmd" >/dev/null 2>&1 &&
        out=$("$cmd" --check-config -c "$file" 2>/dev/null </dev/null); then
        printf '%s\n' "$out" | sed -n 's/^\[\(.*\)\]$/\1/p'
        return
    fi
    # The file has errors (or no mailfetch to ask): its [section] lines, as
    # iniparser reads them (blanks around the name trimmed, lower case).
    sed -n 's/^[[:space:]]*\[[[:space:]]*\([^]]*[^][:space:]]\)[[:space:]]*\][[:space:]]*$/\1/p' \
        -- "$file" 2>/dev/null | tr '[:upper:]' '[:lower:]' | awk '$0 != "defaults" && !seen[$0]++'
}

# COMPREPLY = the account names that start with $2, case not counting
# (mailfetch matches names case-insensitively), from the config file the
# line being completed names; $1 is the mailfetch to ask.
_mailfetch_complete_accounts() {
    local name prefix
    prefix=$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')
    COMPREPLY=()
    while IFS= read -r name; do
        [[ -n $name ]] || continue
        if [[ $name == "$prefix"* ]]; then
            if [[ $name == *[![:alnum:]._@+-]* ]]; then
                name=$(printf '%q' "$name")
            fi
            COMPREPLY+=("$name")
        fi
    done < <(_mailfetch_account_names "$1" "$(_mailfetch_config_file "${COMP_WORDS[@]:1}")")
}

# COMPREPLY = files and directories starting with $1.
_mailfetch_complete_files() {
    local cur=$1
    case $cur in
    \'* | \"*) cur=${cur:1} ;;
    esac
    compopt -o filenames 2>/dev/null
    COMPREPLY=()
    local f
    while IFS= read -r f; do
        COMPREPLY+=("$f")
    done < <(compgen -f -- "$cur")
}

_mailfetch() {
    local cur=${COMP_WORDS[COMP_CWORD]-} prev="" cmd=${1:-mailfetch}
    local i w
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    # "--opt=VALUE": split into "--opt" "=" "VALUE" by COMP_WORDBREAKS, or
    # one word when "=" is not a word break.
    if [[ $cur == "=" && $prev == --* ]]; then
        cur=""
    elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    elif [[ $cur == "=" ]]; then
        cur=""
    fi

    # The value of an option.
    case $prev in
    -c | --config | --lockfile | --logfile | -o | --output)
        _mailfetch_complete_files "$cur"
        return 0
        ;;
    --store-password | --forget-password)
        _mailfetch_complete_accounts "$cmd" "$cur"
        return 0
        ;;
    --limit | --fetch-limit | -d | --daemon)
        COMPREPLY=()
        return 0
        ;;
    esac
    # A cluster of short options ending in -d: its SECONDS.
    if [[ $prev =~ ^-[vqkahV]*d$ ]]; then
        COMPREPLY=()
        return 0
    fi
    # A cluster of short options ending in one that takes a file: -vc FILE.
    if [[ $prev =~ ^-[vqkahV]*[co]$ ]]; then
        _mailfetch_complete_files "$cur"
        return 0
    fi

    # What came before: "--" ends the options; --import-fetchmailrc takes a
    # file, not accounts; --store-password and --forget-password take no
    # other argument.
    local after_dashdash=0 import=0 password=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        --) after_dashdash=1 ; break ;;
        --import-fetchmailrc) import=1 ;;
        --store-password | --forget-password | --store-password=* | --forget-password=*) password=1 ;;
        esac
        if _mailfetch_needs_value "$w"; then
            [[ ${COMP_WORDS[i + 1]-} == "=" ]] && ((i++))
            ((i++))
        fi
    done

    if [[ $cur == -* ]] && ((!after_dashdash)); then
        COMPREPLY=($(compgen -W "$_mailfetch_options" -- "$cur"))
        return 0
    fi
    if ((import)); then
        _mailfetch_complete_files "$cur"
        return 0
    fi
    if ((password)); then
        COMPREPLY=()
        return 0
    fi
    _mailfetch_complete_accounts "$cmd" "$cur"
    return 0
}

complete -F _mailfetch mailfetch
