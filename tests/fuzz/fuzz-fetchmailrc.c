/* Fuzz target: fetchmail's rc grammar on arbitrary bytes, and the fetchrc
 * written for whatever parses. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fetchmailrc.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fmrc *rc = NULL;
	struct mf_error err;
	struct fmrc_emit_opts eo = { "fuzz.rc", "fuzzer" };
	struct fmrc_emit_result res;
	static FILE *devnull;

	log_level = LOG_QUIET;
	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	if (fmrc_parse((const char *)data, size, "fuzz.rc", "/home/fuzz", &rc, &err) == 0) {
		fmrc_emit(rc, &eo, devnull, &res);
		fmrc_free(rc);
	}
	return 0;
}
