/* status.c: error records and the order of seriousness of exit codes. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "status.h"

int
err_set(struct mf_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = code;
		err->reply = 0;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Rank of an exit code, higher is more serious.  Delivery failures come
 * first because mail is at stake; "no mail" is the least serious. */
static int
status_rank(int code)
{
	static const int order[] = {
		MF_NOMAIL, MF_OK, MF_LIMIT, MF_ESERVER, MF_EDNS, MF_ECONNECT, MF_EAUTH,
		MF_EPROTO, MF_EDELIVER, MF_ELOCK, MF_EPERM, MF_EUSAGE, MF_EINTERNAL,
	};
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
		if (order[i] == code)
			return (int)i;
	return (int)(sizeof order / sizeof order[0]); /* unknown: most serious */
}

int
status_worse(int a, int b)
{
	return status_rank(a) >= status_rank(b) ? a : b;
}

const char *
status_class(int code)
{
	switch (code) {
	case MF_OK: return "delivered";
	case MF_NOMAIL: return "no-mail";
	case MF_ECONNECT: return "connect";
	case MF_EAUTH: return "auth";
	case MF_EPROTO: return "protocol";
	case MF_EUSAGE: return "usage";
	case MF_EPERM: return "permissions";
	case MF_ESERVER: return "server";
	case MF_ELOCK: return "locked";
	case MF_EDELIVER: return "delivery";
	case MF_EDNS: return "dns";
	case MF_LIMIT: return "fetch-limit";
	case MF_EINTERNAL: return "internal";
	default: return code > 128 && code < 128 + 65 ? "signal" : "unknown";
	}
}
