/* Replays a fuzz target's seed corpus (and any files named on the command
 * line) without libFuzzer, so make check runs every target on every seed
 * under the normal (or sanitizer) build.  FUZZ_CORPUS names the corpus
 * directory under $srcdir/tests/fuzz/corpus. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (fp == NULL) {
		perror(path);
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
	} while (n > 0);
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *top = getenv("srcdir");
	char dir[4096];
	struct dirent *de;
	DIR *d;
	int count = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_file(argv[i]) < 0)
				return 99;
		return 0;
	}
	snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", top ? top : ".", FUZZ_CORPUS);
	d = opendir(dir);
	if (d == NULL) {
		perror(dir);
		return 99;
	}
	while ((de = readdir(d)) != NULL) {
		char path[8192];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (run_file(path) < 0)
			return 99;
		count++;
	}
	closedir(d);
	printf("%s: %d seed%s replayed\n", FUZZ_CORPUS, count, count == 1 ? "" : "s");
	return count > 0 ? 0 : 99;
}
