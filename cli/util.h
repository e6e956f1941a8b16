/*
 * util.h: small helpers shared by the CLI subcommands: strict number parsing (the whole string must
 * be a number in range, else a usage error naming the flag), a monotonic clock, and a progress bar
 * drawn on stderr only when stderr is a terminal.
 */
#ifndef MN_CLI_UTIL_H
#define MN_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parse s as an integer in [lo, hi]; on failure print "minnow CMD: FLAG: ..." and return 0. */
int cli_parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out);
int cli_parse_f32(const char *cmd, const char *flag, const char *s, float lo, float hi, float *out);
/* Parse "1,2,3" (commas and/or spaces) into a malloc'd array of ids in [0, INT32_MAX]. */
int cli_parse_ids(const char *cmd, const char *flag, const char *s, int32_t **out, int *n_out);
/* Reads a whole file into a malloc'd NUL-terminated buffer; prints an error and returns NULL. */
char *cli_read_file(const char *cmd, const char *path, size_t max_bytes, size_t *len_out);

/* Sampling flags shared by run and chat: --temp, --top-k, --top-p, --min-p, --repeat-penalty,
 * --repeat-last-n, --frequency-penalty, --presence-penalty, -s/--seed. Returns 1 when `flag` is one
 * of them and its value parsed into sp, 0 when it is not one of them, -1 on a bad value (printed). */
struct mn_sampler_params;
int cli_parse_sampling(const char *cmd, const char *flag, const char *value, struct mn_sampler_params *sp);

/* Evaluates ids[0..n) of sequence 0 at positions start.. in batches of the context's n_batch;
 * logits of the last token are ready afterwards. Prints the error and returns 0 on failure. */
struct mn_context;
int cli_prefill(const char *cmd, struct mn_context *ctx, const int32_t *ids, int n, int32_t start);

/* "f32" | "f16" | "q8_0" -> enum mn_kv_type; prints an error and returns -1 otherwise. */
int cli_parse_kv_type(const char *cmd, const char *s);

double cli_now(void); /* seconds, monotonic */

/* Progress bar on stderr (no-op unless stderr is a tty). user: the label string. */
void cli_progress(void *user, uint64_t done, uint64_t total);

#endif
