/* secret.c: the password lookup chain. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_LIBSECRET
#include <dlfcn.h>
#include <libsecret/secret.h>
#endif

#include "mf_limits.h"
#include "secret.h"
#include "xmalloc.h"

/* Runs cmd with sh -c and returns the first line of its stdout. */
static int
secret_from_command(const struct account *a, char **out, struct mf_error *err)
{
	char buf[PASSWORD_MAX + 1];
	size_t len = 0;
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(err, MF_EAUTH, "cannot run password_command: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		signal(SIGXFSZ, SIG_DFL);
		if (dup2(p[1], 1) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", a->password_command, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return err_set(err, MF_EAUTH, "cannot run password_command: %s", strerror(errno));
	}
	for (;;) {
		ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof buf - 1)
			break;
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		wipe(buf, sizeof buf);
		return err_set(err, MF_EAUTH, "password_command failed (%s %d); run it by hand to see why",
		    WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	if (buf[0] == '\0')
		return err_set(err, MF_EAUTH, "password_command printed no password; it must print the password on its first line");
	*out = xstrdup(buf);
	wipe(buf, sizeof buf);
	return 0;
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
		    "store one with: secret-tool store --label=mailfetch host %s user %s",
		    a->user, a->host, a->host, a->user);
	*out = xstrdup(pw);
	pw_free(pw);
	return 0;
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
		return secret_from_command(a, out, err);
#ifdef HAVE_LIBSECRET
	if (a->password_store == PWSTORE_SECRET)
		return secret_from_store(a, out, err);
#endif
	return err_set(err, MF_EAUTH, "no password source; set password, password_command or password_store");
}
