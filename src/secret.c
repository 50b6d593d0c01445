/* secret.c: the password lookup chain. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBSECRET
#include <dlfcn.h>
#include <libsecret/secret.h>
#endif

#include "mf_limits.h"
#include "proc.h"
#include "secret.h"
#include "signals.h"
#include "xmalloc.h"

/* The first line of password_command's stdout, as it arrives. */
struct first_line {
	char buf[PASSWORD_MAX + 1];
	size_t len;
	int ended;     /* its end (CR or LF) was seen */
	int too_long;  /* more than PASSWORD_MAX bytes before it */
};

/* Keeps the bytes up to the first CR or LF.  What follows is read and
 * dropped rather than left in the pipe: a command still writing it (the
 * rest of a `pass show` entry) must not block, nor die of SIGPIPE. */
static void
first_line_got(void *ctx, const char *p, size_t n)
{
	struct first_line *f = ctx;
	size_t take = 0;

	if (f->ended || f->too_long)
		return;
	while (take < n && p[take] != '\n' && p[take] != '\r')
		take++;
	if (take > PASSWORD_MAX - f->len) {
		f->too_long = 1;
		return;
	}
	memcpy(f->buf + f->len, p, take);
	f->len += take;
	f->ended = take < n;
}

/* Runs the command with /bin/sh -c in a process group of its own, stdin
 * from /dev/null (under cron nothing can answer a prompt: a command that
 * reads stdin must see EOF at once rather than hang), stdout to us, and
 * stderr to our stderr: its complaints reach the user at once and
 * unchanged, and being no pipe of ours, they cannot hold us.  Reading its
 * output and waiting for its exit both end at password_command_timeout,
 * when its whole group is killed (a pinentry that waits forever, and what
 * it started).  Sets *out to the first line.  key names the setting
 * (password_command), what the secret (password) in messages. */
static int
secret_from_command(const char *command, const char *key, const char *what, int timeout, char **out,
    struct mf_error *err)
{
	char *argv[] = { "/bin/sh", "-c", (char *)command, NULL };
	struct first_line f = { .len = 0 };
	struct proc_reader r;
	struct proc p;
	int pfd[2], rc;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_set(err, MF_EAUTH, "cannot run %s: %s; the system may be short of "
		    "file descriptors, try again later", key, strerror(errno));
	rc = proc_spawn(&p, argv, PROC_NULL, pfd[1], PROC_KEEP);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		return err_set(err, MF_EAUTH, "cannot run %s: %s%s", key, proc_strerror(rc),
		    rc == ECHILD ? "" : "; check the command");
	}
	/* Asked to stop, we will not log in: no reason to wait for it. */
	p.stop = signals_stop_flag();
	r = (struct proc_reader){ .fd = pfd[0], .got = first_line_got, .ctx = &f };
	proc_wait(&p, &r, 1, proc_now_ms() + (long)timeout * 1000);
	close(pfd[0]);
	f.buf[f.len] = '\0';

	switch (p.end) {
	case PROC_EXITED:
		if (p.code == 0)
			break;
		rc = err_set(err, MF_EAUTH, "%s failed (exit status %d); run it by hand to see why", key, p.code);
		goto fail;
	case PROC_SIGNALED:
		rc = err_set(err, MF_EAUTH, "%s failed (signal %d); run it by hand to see why", key, p.code);
		goto fail;
	case PROC_TIMEDOUT:
		rc = err_set(err, MF_EAUTH, "%s did not finish within %d s and was killed; "
		    "it may be waiting for input, which it cannot get (it runs with stdin from /dev/null and "
		    "without the terminal): make it work without one, or raise password_command_timeout",
		    key, timeout);
		goto fail;
	case PROC_STOPPED:
		rc = err_set(err, MF_EAUTH, "%s was killed: mailfetch was asked to stop", key);
		goto fail;
	default:
		rc = err_set(err, MF_EAUTH, "%s's exit status was lost (SIGCHLD ignored?), "
		    "so its output is not trusted; start mailfetch with SIGCHLD at its default action", key);
		goto fail;
	}
	if (f.too_long) {
		rc = err_set(err, MF_EAUTH, "%s printed a first line longer than %u bytes; "
		    "it must print the %s on its first line", key, PASSWORD_MAX, what);
		goto fail;
	}
	if (f.buf[0] == '\0') {
		rc = err_set(err, MF_EAUTH, "%s printed no %s; it must print the %s on its first line", key, what, what);
		goto fail;
	}
	*out = xstrdup(f.buf);
	wipe(&f, sizeof f);
	return 0;
fail:
	wipe(&f, sizeof f);
	return rc;
}

#ifdef HAVE_LIBSECRET
static const SecretSchema mailfetch_schema = {
	.name = "org.mailfetch.Password",
	/* match by attributes alone, so an item stored with secret-tool is found */
	.flags = SECRET_SCHEMA_DONT_MATCH_NAME,
	.attributes = {
		{ "host", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "user", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, 0 },
	},
};

/* libsecret (and with it GLib and GIO) is loaded only for an account
 * that asks for it: linked in, it would more than double the memory of
 * every run.  The soname is libsecret's stable ABI. */
static int
secret_from_store(const struct account *a, char **out, struct mf_error *err)
{
	__typeof__(secret_password_lookup_sync) *lookup;
	__typeof__(secret_password_free) *pw_free;
	void (*gerr_free)(GError *);
	void *lib = dlopen("libsecret-1.so.0", RTLD_NOW | RTLD_LOCAL);
	GError *gerr = NULL;
	gchar *pw;

	if (lib == NULL)
		return err_set(err, MF_EAUTH, "cannot load libsecret (%s); install libsecret-1-0 "
		    "or use password_command", dlerror());
	lookup = (__typeof__(lookup))dlsym(lib, "secret_password_lookup_sync");
	pw_free = (__typeof__(pw_free))dlsym(lib, "secret_password_free");
	gerr_free = (void (*)(GError *))dlsym(lib, "g_error_free");
	if (lookup == NULL || pw_free == NULL || gerr_free == NULL) {
		dlclose(lib);
		return err_set(err, MF_EAUTH, "libsecret lacks secret_password_lookup_sync; "
		    "install a current libsecret-1-0 or use password_command");
	}
	pw = lookup(&mailfetch_schema, NULL, &gerr, "host", a->host, "user", a->user, NULL);
	if (gerr != NULL) {
		err_set(err, MF_EAUTH, "cannot read the password from the Secret Service: %s; "
		    "is a keyring running in this session?", gerr->message);
		gerr_free(gerr);
		return err->code; /* GLib stays loaded: unloading it is not safe */
	}
	if (pw == NULL)
		return err_set(err, MF_EAUTH, "no password stored for %s at %s in the Secret Service; "
		    "store one with: mailfetch --store-password %s", a->user, a->host, a->name);
	*out = xstrdup(pw);
	pw_free(pw);
	return 0;
}
/* dlopen()s libsecret and finds sym in it: NULL with err set if it cannot. */
static void *
libsecret_sym(const char *sym, struct mf_error *err)
{
	void *lib = dlopen("libsecret-1.so.0", RTLD_NOW | RTLD_LOCAL), *fn;

	if (lib == NULL) {
		err_set(err, MF_EAUTH, "cannot load libsecret (%s); install libsecret-1-0", dlerror());
		return NULL;
	}
	if ((fn = dlsym(lib, sym)) == NULL)
		err_set(err, MF_EAUTH, "libsecret lacks %s; install a current libsecret-1-0", sym);
	return fn; /* GLib stays loaded: unloading it is not safe */
}

int
secret_store(const struct account *a, const char *password, struct mf_error *err)
{
	__typeof__(secret_password_store_sync) *store = libsecret_sym("secret_password_store_sync", err);
	void (*gerr_free)(GError *) = (void (*)(GError *))libsecret_sym("g_error_free", err);
	GError *gerr = NULL;
	char label[300];

	if (store == NULL || gerr_free == NULL)
		return err->code;
	snprintf(label, sizeof label, "mailfetch: %s@%s", a->user, a->host);
	if (!store(&mailfetch_schema, SECRET_COLLECTION_DEFAULT, label, password, NULL, &gerr,
	        "host", a->host, "user", a->user, NULL) || gerr != NULL) {
		err_set(err, MF_EAUTH, "the Secret Service did not store the password: %s; "
		    "is a keyring running and unlocked in this session?", gerr != NULL ? gerr->message : "no reason given");
		if (gerr != NULL)
			gerr_free(gerr);
		return err->code;
	}
	return 0;
}

int
secret_forget(const struct account *a, int *removed, struct mf_error *err)
{
	__typeof__(secret_password_clear_sync) *clear = libsecret_sym("secret_password_clear_sync", err);
	void (*gerr_free)(GError *) = (void (*)(GError *))libsecret_sym("g_error_free", err);
	GError *gerr = NULL;

	*removed = 0;
	if (clear == NULL || gerr_free == NULL)
		return err->code;
	*removed = clear(&mailfetch_schema, NULL, &gerr, "host", a->host, "user", a->user, NULL) != 0;
	if (gerr != NULL) {
		err_set(err, MF_EAUTH, "the Secret Service did not remove the password: %s; "
		    "is a keyring running and unlocked in this session?", gerr->message);
		gerr_free(gerr);
		return err->code;
	}
	return 0;
}
#else
int
secret_store(const struct account *a, const char *password, struct mf_error *err)
{
	(void)a;
	(void)password;
	return err_set(err, MF_EUSAGE, "this mailfetch was built without libsecret; use password_command");
}

int
secret_forget(const struct account *a, int *removed, struct mf_error *err)
{
	(void)a;
	*removed = 0;
	return err_set(err, MF_EUSAGE, "this mailfetch was built without libsecret");
}
#endif

int
secret_get(const struct account *a, char **out, struct mf_error *err)
{
	*out = NULL;
	if (a->password != NULL) {
		*out = xstrdup(a->password);
		return 0;
	}
	if (a->password_command != NULL)
		return secret_from_command(a->password_command, "password_command", "password",
		    a->password_command_timeout, out, err);
#ifdef HAVE_LIBSECRET
	if (a->password_store == PWSTORE_SECRET)
		return secret_from_store(a, out, err);
#endif
	return err_set(err, MF_EAUTH, "no password source; set password, password_command or password_store");
}

int
secret_token(const struct account *a, char **out, struct mf_error *err)
{
	*out = NULL;
	if (a->oauth_token_command == NULL)
		return err_set(err, MF_EAUTH, "no oauth_token_command; set one for XOAUTH2 or OAUTHBEARER");
	return secret_from_command(a->oauth_token_command, "oauth_token_command", "access token",
	    a->password_command_timeout, out, err);
}
