/* mf_limits.h: every size limit mailfetch enforces, in one place.
 *
 * Nothing a server sends can make us allocate past these; each is checked
 * before the allocation it guards. */
#ifndef MAILFETCH_MF_LIMITS_H
#define MAILFETCH_MF_LIMITS_H

/* IMAP responses (imap_parse.c) */
#define IMAP_LINE_MAX        (8u * 1024 * 1024) /* non-literal text of one response */
#define IMAP_DEPTH_MAX       16u                 /* nesting of parenthesised lists */
#define IMAP_ARGS_MAX        (1u << 20)          /* arguments in one response, all levels */
#define IMAP_RESPONSE_MAX    (32u * 1024 * 1024) /* memory one parsed response may hold:
                                                   text, inline literals, argument records */
#define IMAP_SEARCH_MAX      (4u << 20)          /* UIDs one UID SEARCH may return */
#define IMAP_INLINE_LITERAL_MAX (64u * 1024)     /* literals kept in the parser; larger ones are streamed */
#define IMAP_LITERAL_MAX     (2047ull * 1024 * 1024) /* largest literal (message) accepted */
#define IMAP_TAG_MAX         32u

/* commands we build (imap.c) */
#define IMAP_CMD_MAX         8192u   /* one command line; UID sets are split to fit */
#define IMAP_FETCH_BATCH     250u    /* messages per UID FETCH; marks follow each batch,
                                        so a lost connection redelivers at most this many */
#define IMAP_FETCH_WINDOW    4u      /* UID FETCH commands kept in flight */
#define IMAP_PIPELINE_MAX    64u     /* commands in flight at most (FETCH and marks) */
#define IMAP_MARK_WINDOW     4u      /* UID STORE + UID EXPUNGE commands in flight at most */

/* messages (spool.c) */
#define SPOOL_MEMORY_MAX     (128u * 1024) /* beyond this a message goes to an unlinked temp file */
#define IO_CHUNK             (32u * 1024)
#define MBOX_PEND_MAX        (16u * 1024) /* an mbox message this small is written in one call */
#define SINK_UNREAD_MS       2       /* a wait for the IMAP server that lasts longer first reads the
                                      * replies to messages the sink took without waiting */
#define TLS_READ_BUFFER      (32u * 1024) /* OpenSSL read-ahead: bytes taken from the socket per read() */

/* slow servers (conn.c): the low-speed rule, besides the per-read timeout.
 * Waiting for the server is summed in windows of `timeout` seconds; a
 * window in which fewer than LOW_SPEED_FLOOR bytes a second arrived cuts
 * the connection (exit 7), so a server dripping a byte at a time cannot
 * hold the run and its locks for ever.  4 bytes/s cuts a one-byte-a-second
 * drip with room to spare and is far below any link that works at all (a
 * 300 baud modem moves 30 bytes/s); one TCP segment of the smallest size
 * (536 bytes) in a window keeps it alive for any timeout up to 134 s.
 * Thinking is not trickling: every command line we send excuses up to
 * `timeout` seconds of the server's silence from the window, at most
 * LOW_SPEED_EXCUSED_MAX commands' worth at a time (SELECT and SEARCH go
 * out together), so a slow SEARCH within `timeout` is never cut. */
#define LOW_SPEED_FLOOR       4u   /* bytes per second, averaged over a window */
#define LOW_SPEED_EXCUSED_MAX 2u   /* commands whose thinking time is excused at once */

/* A server that sends no greeting within GREETING_PROBE_MS on a port
 * where one is due is asked, on a second connection, whether it speaks
 * TLS from the start (tls = implicit wanted), for up to TLS_PROBE_MS;
 * meanwhile the greeting is still waited for as usual. */
#define GREETING_PROBE_MS    1500
#define TLS_PROBE_MS         3000

/* the daemon (sched.c) */
#define PARALLEL_DEFAULT     8       /* accounts polled at once (parallel = N) */
#define SCHED_STACK_SIZE     (1024u * 1024) /* per thread: an account's poller or watcher */
#define SCHED_RETRY_MIN_MS   5000L   /* first retry after a failed poll; doubles up to the interval */
#define SCHED_AUTH_RETRY_MS  (10L * 60 * 1000) /* after a refused login; doubles up to: */
#define SCHED_AUTH_RETRY_MAX_MS (60L * 60 * 1000)
#define WATCH_STABLE_MS      60000L  /* a watch connection that lasted this long resets the backoff */
#define WATCH_REPOLL_MS      30000L  /* a reconnected watch polls, unless a poll ended this recently */
#define WATCH_KEEPIDLE_S     120     /* TCP keepalive on watch connections: first probe after, */
#define WATCH_KEEPINTVL_S    30      /* then every, */
#define WATCH_KEEPCNT        4       /* and this many unanswered probes end it */

/* secrets and config */
#define PASSWORD_MAX         4096u  /* also an OAuth2 token */
/* SASL (sasl.c): a SCRAM iteration count the server asks for, and one
 * decoded challenge.  Servers use 4096 to a few 100,000; a million
 * PBKDF2-SHA-256 rounds take well under a second. */
#define SCRAM_ITERATIONS_MAX 1000000u
#define SASL_CHALLENGE_MAX   (16u * 1024)
#define CONFIG_VALUE_MAX     1024u
#define CONFIG_FILE_MAX      (1024u * 1024)
#define HEADER_SCAN_MAX      (64u * 1024) /* how far into a message we look for Return-Path */

/* stopping on SIGTERM, SIGINT, SIGHUP */
#define STOP_GRACE_MS        6000L /* to finish the message in hand, send the marks earned and log
                                      out; the run is gone within about 10 s of the signal */
#define STOP_CHECK_MS        250L  /* longest wait between two looks at the stop flag */

/* delivery */
#define JOURNAL_TOKEN_MAX    255   /* where a sink is about to write (state journal intents) */
#define MBOX_LOCK_TRIES      60u   /* dotlock/fcntl attempts, one every 500 ms */
#define MBOX_DOTLOCK_STALE   300   /* seconds after which a dotlock is stale */

#endif
