/* Durations as people type them, one parser for every flag and config key that takes one (`--tombstone-retention
 * 7d`, `--by-duration PT30M`, `consume --from @-10m`, `--timeout 5s`, the broker's `stall_after`):
 *
 *   short form   one or more NUMBER UNIT groups, largest unit first: 500ms, 30s, 10m, 2h, 7d, 2w, 1h30m
 *   ISO 8601     P[nW][nD][T[nH][nM][n[.fff]S]], as Java's Duration.parse reads it: PT30M, P1DT2H, PT1.5S
 *
 * A day is 24 hours and a week 7 days; years and months are refused in both forms because their length depends on
 * the date. Negative durations are refused: a caller that means "ago" says so itself. And the way back:
 * sl_duration_format writes the two largest units ("3m2s", "1h5m", "2d3h", "850ms") for tables people read. */
#ifndef SL_BASE_DURATION_H
#define SL_BASE_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Either form. Returns 0 with milliseconds, or -EINVAL (also for an empty string, a unit out of order or given
 * twice, and more than INT64_MAX milliseconds). */
int sl_duration_parse(const char *s, int64_t *ms_out);
/* The ISO 8601 form only. Returns 0 with milliseconds or -EINVAL (also for "P" or "PT", which say nothing). */
int sl_duration_parse_iso8601(const char *s, int64_t *ms_out);

/* Room for any formatted duration ("106751991167d7h" is the longest) and its NUL. */
#define SL_DURATION_TEXT_BYTES 24
/* Write ms (>= 0; a negative value is written as "-" then its magnitude) as at most two units, rounded down:
 * 0 -> "0s", 850 -> "850ms", 1500 -> "1.5s", 62000 -> "1m2s", 3720000 -> "1h2m", 97200000 -> "1d3h". */
void sl_duration_format(int64_t ms, char *buf, size_t bytes);

#endif
