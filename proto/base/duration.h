/* Durations as operators write them: "500ms", "30s", "5m", "2h", "7d", or ISO 8601 ("PT30M", "P1DT2H"). One
 * parser for the broker's flags and the tools'. */
#ifndef SL_BASE_DURATION_H
#define SL_BASE_DURATION_H

#include <stdint.h>

/* An ISO 8601 duration of days and times, as Java's Duration.parse reads them: P[nW][nD][T[nH][nM][n[.fff]S]]
 * (a day is 24 hours; years and months are refused: their length depends on the date). Returns 0 with
 * milliseconds, or -EINVAL (also for an empty duration such as "P" or "PT", or more than ~292 million years). */
int sl_duration_parse_iso8601(const char *s, int64_t *ms_out);
/* A decimal number followed by one unit of ms, s, m, h, d (no space), a bare 0, or an ISO 8601 duration. Returns 0
 * with milliseconds, or -EINVAL. */
int sl_duration_parse_ms(const char *s, int64_t *ms_out);

#endif
