/* Fuzz target: the config loader on arbitrary file contents. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct config *cfg = NULL;
	struct config_overrides ov = { .keep = -1 };
	struct mf_error err;
	FILE *fp;
	int fd;

	snprintf(path, sizeof path, "/tmp/mf-fuzz-config.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return 0;
	fp = fdopen(fd, "w");
	fwrite(data, 1, size, fp);
	fclose(fp);
	chmod(path, 0600);
	if (config_load(path, &ov, &cfg, &err) == 0) {
		config_print(cfg, fopen("/dev/null", "w") ?: stdout);
		config_free(cfg);
	}
	unlink(path);
	return 0;
}
