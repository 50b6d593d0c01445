/* spool.h: one received message, held in memory up to SPOOL_MEMORY_MAX
 * and beyond that in an unlinked temporary file, so memory stays bounded
 * whatever the message size.  A spool is reused message after message. */
#ifndef MAILFETCH_SPOOL_H
#define MAILFETCH_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "status.h"

struct spool;

struct spool *spool_new(void);
void spool_free(struct spool *s);
/* Empties the spool for the next message. */
void spool_reset(struct spool *s);
/* Appends; on a local write failure (disk full) returns MF_EDELIVER with err set. */
int spool_write(struct spool *s, const void *p, size_t n, struct mf_error *err);
uint64_t spool_size(const struct spool *s);
/* Reads up to len bytes at offset off; returns bytes read (0 at the end) or -1. */
ssize_t spool_pread(struct spool *s, void *buf, size_t len, uint64_t off);

/* A new empty file, read-write and close-on-exec, that no other process
 * can open by name: a memfd that can be sealed when in_memory is set and
 * the kernel has them, else an unlinked file in $TMPDIR (or /tmp), where
 * large messages go.  Returns the descriptor (the caller closes it), or
 * -1 with errno set. */
int spool_anon_fd(int in_memory);

#endif
