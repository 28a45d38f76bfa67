/* The one parser of the durations operators type (`--idle-timeout 30s`, `--by-duration PT30M`): the short form
 * of a non-negative integer and a unit (`500ms`, `30s`, `5m`, `2h`, `7d`), or an ISO 8601 duration of days and
 * times as Java's Duration.parse reads them (P[nW][nD][T[nH][nM][n[.fff]S]]; years and months are refused, their
 * length depends on the date). */
#ifndef SL_BASE_DURATION_H
#define SL_BASE_DURATION_H

#include <stdint.h>

/* Milliseconds in *ms_out, or -EINVAL (also for an empty duration such as "P", "PT" or "s", a unit missing or
 * unknown, or more than ~292 million years). */
int sl_duration_parse(const char *s, int64_t *ms_out);

#endif
