/* main.c: command line, run lock, and the exit status of the whole run. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "fetch.h"
#include "mf_limits.h"
#include "sasl.h"
#include "secret.h"
#include "fetchmailrc.h"
#include "signals.h"
#include "state.h"
#include "tls.h"
#include "report.h"
#include "sched.h"
#include "net.h"
#include "status.h"
#include "xmalloc.h"

struct options {
	const char *config;
	const char *lockfile;
	int check_config;
	int check;
	int no_mail_ok;
	struct config_overrides ov;
	int import_fetchmailrc;   /* --import-fetchmailrc [FILE] */
	int json;                    /* --json */
	int daemon;                  /* -d, --daemon SECONDS: the interval; 0: one run */
	long start_ms;               /* when the run started (monotonic) */
	const char *store_password;  /* --store-password ACCOUNT */
	const char *forget_password; /* --forget-password ACCOUNT */
	const char *output;       /* -o, --output FILE */
	const char *logfile;      /* --logfile FILE */
	int use_syslog;           /* --syslog */
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "Usage: mailfetch [OPTION]... [ACCOUNT]...\n"
	    "Fetch mail from IMAP accounts and deliver it to an MDA or an mbox.\n"
	    "Polls every account in the config file, or only those named.\n"
	    "\n"
	    "  -c, --config FILE    config file (default $XDG_CONFIG_HOME/mailfetch/fetchrc,\n"
	    "                       then ~/.fetchrc)\n"
	    "  -v, --verbose        one line per message; twice: protocol trace;\n"
	    "                       three times: message bodies in the trace too\n"
	    "  -q, --quiet          print errors only\n"
	    "  -k, --keep           mark fetched mail \\Seen and keep it (keep = yes)\n"
	    "      --delete         delete fetched mail after delivery (keep = no)\n"
	    "  -a, --all            fetch all messages, not only unseen ones\n"
	    "      --check          count what would be fetched, fetch nothing; exit 0 if\n"
	    "                       there is mail, 1 if not\n"
	    "      --limit SIZE     leave messages larger than SIZE (10M, 500k...) on the server\n"
	    "      --fetch-limit N  fetch at most N messages per folder\n"
	    "      --no-mail-ok     exit 0 rather than 1 when there was no mail\n"
	    "      --json           a summary of the run on stdout, as one JSON document\n"
	    "  -d, --daemon SECONDS stay running: poll every account every SECONDS\n"
	    "                       (poll_interval overrides), and at once on SIGUSR1;\n"
	    "                       SIGHUP re-reads the config\n"
	    "      --idle           with --daemon: idle = yes for every account (push:\n"
	    "                       NOTIFY or IDLE; new mail is fetched as it comes)\n"
	    "      --lockfile FILE  run lock (default $XDG_STATE_HOME/mailfetch/lock)\n"
	    "      --logfile FILE   log to FILE (appended, with timestamps), not to stderr\n"
	    "      --syslog         log to syslog (facility mail), not to stderr\n"
	    "      --check-config   check the config, print the accounts, and exit\n"
	    "      --import-fetchmailrc [FILE]  print a fetchrc converted from fetchmail's\n"
	    "                       FILE (default ~/.fetchmailrc); with -o FILE, write it\n"
	    "                       there (mode 600, never over an existing file)\n"
	    "      --store-password ACCOUNT  ask for ACCOUNT's password (no echo; or one\n"
	    "                       line from stdin) and store it in the Secret Service\n"
	    "      --forget-password ACCOUNT  remove it again\n"
	    "  -h, --help           show this help and exit\n"
	    "  -V, --version        show the version and exit\n"
	    "\n"
	    "Exit status: 0 mail delivered, 1 no mail, 2 connection or TLS failure,\n"
	    "3 authentication failed, 4 protocol error, 5 usage or config error,\n"
	    "6 config file permissions, 7 server error or timeout, 8 another run is active,\n"
	    "10 delivery failed, 11 DNS failure, 13 fetch limit left mail behind,\n"
	    "23 internal error, 128+N stopped by signal N.  See mailfetch(1).\n");
}

enum { OPT_DELETE = 256, OPT_NO_MAIL_OK, OPT_LOCKFILE, OPT_CHECK_CONFIG, OPT_CHECK, OPT_LIMIT, OPT_FETCH_LIMIT };
enum { OPT_IMPORT_FETCHMAILRC = 512, OPT_STORE_PASSWORD, OPT_FORGET_PASSWORD, OPT_JSON, OPT_IDLE };
enum { OPT_LOGFILE = 768, OPT_SYSLOG };

/* getopt_long takes any unique prefix of a long option for the option:
 * --check would silently be --check-config.  Every long option given
 * must be spelled out; returns 0, or MF_EUSAGE with the error reported. */
static int
check_long_names(int argc, char **argv, const struct option *longopts)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t len;
		int known = 0;
		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) != 0)
			continue;
		len = strcspn(a + 2, "=");
		for (const struct option *o = longopts; o->name != NULL && !known; o++)
			known = strlen(o->name) == len && strncmp(o->name, a + 2, len) == 0;
		if (!known) {
			log_error(NULL, "unknown option --%.*s (long options are never abbreviated); "
			    "try mailfetch --help", (int)len, a + 2);
			return MF_EUSAGE;
		}
	}
	return 0;
}

/* --version: the version, and what this build has in it. */
static void
print_version(void)
{
	printf("mailfetch %s\n", PACKAGE_VERSION);
	printf("TLS: %s", tls_library_version());
	if (strcmp(tls_library_version(), tls_built_version()) != 0)
		printf(" (built with %s)", tls_built_version());
	printf("\nSASL: built in (no SASL library):");
	for (int m = 0; m < SASL_NMECH; m++)
		printf(" %s", sasl_mech_name((enum sasl_mech)m));
	printf("\n");
#ifdef HAVE_LIBSECRET
	printf("libsecret: yes (password_store = secret, --store-password; loaded only when used)\n");
#else
	printf("libsecret: no (built --without-libsecret: no password_store = secret, no --store-password)\n");
#endif
	printf("protocols: IMAP\ndelivery: mda, mbox, maildir, smtp, lmtp\n");
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "keep", no_argument, NULL, 'k' },
		{ "delete", no_argument, NULL, OPT_DELETE },
		{ "all", no_argument, NULL, 'a' },
		{ "no-mail-ok", no_argument, NULL, OPT_NO_MAIL_OK },
		{ "lockfile", required_argument, NULL, OPT_LOCKFILE },
		{ "logfile", required_argument, NULL, OPT_LOGFILE },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "fetch-limit", required_argument, NULL, OPT_FETCH_LIMIT },
		{ "import-fetchmailrc", no_argument, NULL, OPT_IMPORT_FETCHMAILRC },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "daemon", required_argument, NULL, 'd' },
		{ "idle", no_argument, NULL, OPT_IDLE },
		{ "store-password", required_argument, NULL, OPT_STORE_PASSWORD },
		{ "forget-password", required_argument, NULL, OPT_FORGET_PASSWORD },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c, verbose = 0, quiet = 0;

	memset(o, 0, sizeof *o);
	o->ov.keep = -1;
	opterr = 0;
	if (check_long_names(argc, argv, longopts) != 0)
		return MF_EUSAGE;
	while ((c = getopt_long(argc, argv, ":c:vqkahVo:d:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'v': verbose++; break;
		case 'q': quiet = 1; break;
		case 'k': o->ov.keep = 1; break;
		case OPT_DELETE: o->ov.keep = 0; break;
		case 'a': o->ov.fetch_all = 1; break;
		case OPT_NO_MAIL_OK: o->no_mail_ok = 1; break;
		case OPT_LOCKFILE: o->lockfile = optarg; break;
		case OPT_LOGFILE: o->logfile = optarg; break;
		case OPT_SYSLOG: o->use_syslog = 1; break;
		case OPT_CHECK_CONFIG: o->check_config = 1; break;
		case OPT_CHECK: o->check = 1; break;
		case OPT_LIMIT:
			if (config_parse_size(optarg, &o->ov.limit) < 0) {
				log_error(NULL, "--limit %s: not a size; give bytes, or a number of K, M or G (1 byte "
				    "to 2047M)", optarg);
				return MF_EUSAGE;
			}
			break;
		case OPT_FETCH_LIMIT: {
			char *end;
			long n;
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || n < 1 || n > 1000000) {
				log_error(NULL, "--fetch-limit %s: not a number from 1 to 1000000", optarg);
				return MF_EUSAGE;
			}
			o->ov.fetch_limit = (int)n;
			break;
		}
		case OPT_IMPORT_FETCHMAILRC: o->import_fetchmailrc = 1; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_IDLE: o->ov.idle = 1; break;
		case 'd': {
			char *end;
			long n;
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || n < 10 || n > 86400) {
				log_error(NULL, "--daemon %s: not a number of seconds from 10 to 86400", optarg);
				return MF_EUSAGE;
			}
			o->daemon = (int)n;
			break;
		}
		case OPT_STORE_PASSWORD: o->store_password = optarg; break;
		case OPT_FORGET_PASSWORD: o->forget_password = optarg; break;
		case 'o': o->output = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V':
			print_version();
			exit(0);
		case ':':
			log_error(NULL, "option %s needs a value; try mailfetch --help", argv[optind - 1]);
			return MF_EUSAGE;
		default:
			/* A long option given a value it does not take has its
			 * own code in optopt, not a letter. */
			if (optopt > 0 && optopt < 128)
				log_error(NULL, "unknown option -%c; try mailfetch --help", optopt);
			else
				log_error(NULL, "unknown option %s; try mailfetch --help", argv[optind - 1]);
			return MF_EUSAGE;
		}
	}
	if (quiet && verbose) {
		log_error(NULL, "-q and -v contradict each other; use one");
		return MF_EUSAGE;
	}
	if (o->logfile != NULL && o->use_syslog) {
		log_error(NULL, "--logfile and --syslog contradict each other; use one");
		return MF_EUSAGE;
	}
	if (o->output != NULL && !o->import_fetchmailrc) {
		log_error(NULL, "-o (--output) goes with --import-fetchmailrc only; try mailfetch --help");
		return MF_EUSAGE;
	}
	if (o->daemon > 0 && (o->json || o->check || o->check_config || o->store_password != NULL ||
	    o->forget_password != NULL || o->import_fetchmailrc)) {
		log_error(NULL, "--daemon keeps polling: it goes with none of --json, --check, --check-config, "
		    "--store-password, --forget-password, --import-fetchmailrc; give one or the other");
		return MF_EUSAGE;
	}
	if (o->ov.idle && o->daemon == 0) {
		log_error(NULL, "--idle watches for new mail as long as mailfetch runs: it needs --daemon SECONDS");
		return MF_EUSAGE;
	}
	if (o->json && (o->store_password != NULL || o->forget_password != NULL || o->import_fetchmailrc ||
	    o->check_config)) {
		log_error(NULL, "--json goes with a run or --check only; try mailfetch --help");
		return MF_EUSAGE;
	}
	if ((o->store_password != NULL || o->forget_password != NULL) &&
	    (o->store_password != NULL) + (o->forget_password != NULL) + o->import_fetchmailrc + o->check_config +
	    o->check > 1) {
		log_error(NULL, "--store-password and --forget-password go alone (not with each other, "
		    "--import-fetchmailrc, --check-config or --check); give one of them");
		return MF_EUSAGE;
	}
	if ((o->store_password != NULL || o->forget_password != NULL) && argc > optind) {
		log_error(NULL, "--%s-password takes one account, given as its value; try mailfetch --help",
		    o->store_password != NULL ? "store" : "forget");
		return MF_EUSAGE;
	}
	if (o->import_fetchmailrc && argc - optind > 1) {
		log_error(NULL, "--import-fetchmailrc takes one fetchmailrc, not %d; try mailfetch --help", argc - optind);
		return MF_EUSAGE;
	}
	log_level = quiet ? LOG_QUIET : verbose > LOG_TRACE_BODY ? LOG_TRACE_BODY : verbose;
	return 0;
}

/* Takes the run lock; returns its fd (held until exit) or -1 with the
 * error reported, in err and *code set. */
static int
take_lock(const char *lockfile, int daemon, int *code, struct mf_error *err)
{
	char *path, pidbuf[32];
	int fd, n;

	if (lockfile != NULL) {
		path = xstrdup(lockfile);
	} else {
		char *dir = state_dir();
		path = xasprintf("%s/lock", dir);
		free(dir);
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*code = err_set(err, lockfile != NULL ? MF_EUSAGE : MF_EINTERNAL,
		    "cannot open lock file %s: %s; check the directory or use --lockfile", path, strerror(errno));
		log_error(NULL, "%s", err->msg);
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char other[32] = "";
		ssize_t r = pread(fd, other, sizeof other - 1, 0);
		if (r > 0)
			other[strcspn(other, "\n")] = '\0';
		if (strstr(other, " daemon") != NULL) {
			other[strcspn(other, " ")] = '\0';
			*code = err_set(err, MF_ELOCK, "a mailfetch daemon (pid %s) holds the lock %s and polls on its own; "
			    "to make it poll now: kill -USR1 %s", other, path, other);
		} else {
			*code = err_set(err, MF_ELOCK, "another mailfetch run%s%s%s holds the lock %s; wait for it to "
			    "finish", other[0] ? " (pid " : "", other, other[0] ? ")" : "", path);
		}
		log_error(NULL, "%s", err->msg);
		close(fd);
		free(path);
		return -1;
	}
	n = snprintf(pidbuf, sizeof pidbuf, "%ld%s\n", (long)getpid(), daemon ? " daemon" : "");
	if (ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, pidbuf, (size_t)n, 0);
	free(path);
	return fd;
}

/* Reads the password for --store-password: from the terminal without
 * echo when stdin is one, else one line of stdin.  Into buf (size
 * PASSWORD_MAX + 2); 0, or an exit code with the error reported. */
static int
read_password(const struct account *a, char *buf, size_t size)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t len = 0;
	int rc = 0;

	if (tty) {
		fprintf(stderr, "Password for %s (%s@%s): ", a->name, a->user, a->host);
		fflush(stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		/* Ctrl-\ and Ctrl-Z would leave the terminal without echo
		 * (SIGQUIT kills, SIGTSTP stops, neither comes back here):
		 * off while the password is typed; Ctrl-C still works */
		quiet.c_cc[VQUIT] = _POSIX_VDISABLE;
		quiet.c_cc[VSUSP] = _POSIX_VDISABLE;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
			tty = 0;
	}
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + len, 1);
		if (n < 0 && errno == EINTR && !signals_stop())
			continue;
		if (n < 0) {
			log_error(a->who, "%s", signals_stop() ? "stopped; nothing stored" : strerror(errno));
			rc = signals_stop() ? 128 + signals_stop() : MF_EUSAGE;
			break;
		}
		if (n == 0 || buf[len] == '\n')
			break;
		if (++len >= size - 1) {
			log_error(a->who, "the password is longer than %u bytes; nothing stored", PASSWORD_MAX);
			rc = MF_EUSAGE;
			break;
		}
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (rc == 0 && len == 0) {
		log_error(a->who, "no password given; nothing stored");
		rc = MF_EUSAGE;
	}
	return rc;
}

/* --store-password and --forget-password. */
static int
manage_password(const struct config *cfg, const char *name, int store)
{
	const struct account *a = NULL;
	struct mf_error err = { 0 };
	char pw[PASSWORD_MAX + 2];
	int rc, removed;

	for (size_t k = 0; k < cfg->naccounts; k++)
		if (strcasecmp(cfg->accounts[k].name, name) == 0)
			a = &cfg->accounts[k];
	if (a == NULL) {
		log_error(NULL, "%s: no account named %s; the sections of the config name the accounts", cfg->path, name);
		return MF_EUSAGE;
	}
	if (!store) {
		if ((rc = secret_forget(a, &removed, &err)) != 0) {
			log_error(a->who, "%s", err.msg);
			return rc;
		}
		if (!removed) {
			printf("no password was stored for %s (%s@%s) in the Secret Service\n", a->name, a->user, a->host);
			return MF_NOMAIL;
		}
		printf("removed the password of %s (%s@%s) from the Secret Service\n", a->name, a->user, a->host);
		return 0;
	}
	if ((rc = read_password(a, pw, sizeof pw)) != 0) {
		wipe(pw, sizeof pw);
		return rc;
	}
	rc = secret_store(a, pw, &err);
	wipe(pw, sizeof pw);
	if (rc != 0) {
		log_error(a->who, "%s", err.msg);
		return rc;
	}
	printf("stored the password of %s (%s@%s) in the Secret Service (default collection, label "
	    "\"mailfetch: %s@%s\", attributes host and user)\n", a->name, a->user, a->host, a->user, a->host);
	if (a->password_store != PWSTORE_SECRET)
		printf("note: %s takes its password from %s; set password_store = secret instead to use the stored one\n",
		    a->name, a->password != NULL ? "password" : a->password_command != NULL ? "password_command" :
		    "oauth_token_command");
	return 0;
}

/* The end of a run: the --json summary if asked for, and the status. */
static int
finish(const struct options *o, struct run_report *r, int status)
{
	if (o->json) {
		r->status = status;
		r->seconds = (double)(net_now_ms() - o->start_ms) / 1000.0;
		report_json(stdout, r);
	}
	return status;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct config *cfg = NULL;
	struct mf_error err = { 0 };
	struct account_report *reps = NULL;
	struct run_report run = { 0 };
	struct fetch_opts fo = { 0 };
	char *path;
	int rc, result = MF_NOMAIL, lockfd;

	signals_setup();
	if ((rc = parse_args(argc, argv, &o)) != 0)
		return rc;
	/* Before anything is logged: every line goes to one place. */
	if (o.use_syslog) {
		log_open_syslog();
	} else if (o.logfile != NULL && (rc = log_open_file(o.logfile, &err)) != 0) {
		log_error(NULL, "%s", err.msg);
		return rc;
	}
	if (o.import_fetchmailrc)
		return fmrc_import(optind < argc ? argv[optind] : NULL, o.output);
	run.started = time(NULL);
	o.start_ms = net_now_ms();
	run.check = o.check;
	path = o.config ? xstrdup(o.config) : config_default_path();
	rc = config_load(path, &o.ov, &cfg, &err);
	if (rc != 0) {
		log_error(NULL, "%s", err.msg);
		run.config = path;
		run.error = err.msg;
		rc = finish(&o, &run, rc);
		free(path);
		return rc;
	}
	free(path);
	run.config = cfg->path;
	if (o.store_password != NULL || o.forget_password != NULL) {
		rc = manage_password(cfg, o.store_password != NULL ? o.store_password : o.forget_password,
		    o.store_password != NULL);
		config_free(cfg);
		return rc;
	}
	for (int i = optind; i < argc; i++) {
		size_t k;
		for (k = 0; k < cfg->naccounts; k++)
			if (strcasecmp(cfg->accounts[k].name, argv[i]) == 0)
				break;
		if (k == cfg->naccounts) {
			err_set(&err, MF_EUSAGE, "%s: no account named %s; the sections of the config name the accounts",
			    cfg->path, argv[i]);
			log_error(NULL, "%s", err.msg);
			run.error = err.msg;
			rc = finish(&o, &run, MF_EUSAGE);
			config_free(cfg);
			return rc;
		}
	}
	if (o.check_config) {
		config_print(cfg, stdout);
		config_free(cfg);
		return 0;
	}
	/* --check changes nothing: it needs no lock, and must not wait. */
	lockfd = o.check ? -1 : take_lock(o.lockfile, o.daemon > 0, &rc, &err);
	if (lockfd < 0 && !o.check) {
		run.error = err.msg;
		rc = finish(&o, &run, rc);
		config_free(cfg);
		return rc;
	}
	if (o.daemon > 0) {
		struct sched_opts so = { .ov = o.ov, .interval = o.daemon, .names = argv + optind,
			.nnames = (size_t)(argc - optind) };
		char *cpath = xstrdup(cfg->path);
		so.config_path = cpath;
		signals_setup_daemon();
		result = sched_daemon(cfg, &so); /* frees cfg */
		free(cpath);
		close(lockfd);
		return result;
	}
	fo.check_only = o.check;
	fo.json = o.json;
	reps = xcalloc(cfg->naccounts ? cfg->naccounts : 1, sizeof *reps);
	{
		int *selected = xcalloc(cfg->naccounts ? cfg->naccounts : 1, sizeof *selected);
		size_t n = 0;
		for (size_t k = 0; k < cfg->naccounts; k++) {
			selected[k] = optind >= argc;
			for (int i = optind; i < argc && !selected[k]; i++)
				selected[k] = strcasecmp(cfg->accounts[k].name, argv[i]) == 0;
		}
		result = sched_once(cfg, selected, &fo, reps, &run.naccounts);
		/* the reports of the accounts polled, in the file's order */
		for (size_t k = 0; k < cfg->naccounts; k++)
			if (selected[k] && reps[k].a != NULL)
				reps[n++] = reps[k];
		run.naccounts = n;
		free(selected);
	}
	if (lockfd >= 0)
		close(lockfd);
	if (result == MF_NOMAIL && o.no_mail_ok)
		result = MF_OK;
	/* Stopped by a signal: say so the way shells do. */
	if (signals_stop())
		result = 128 + signals_stop();
	run.accounts = reps;
	result = finish(&o, &run, result);
	for (size_t k = 0; k < run.naccounts; k++)
		fetch_report_free(&reps[k]);
	free(reps);
	config_free(cfg);
	return result;
}
