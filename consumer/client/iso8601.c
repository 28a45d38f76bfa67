/* Points in time to milliseconds since the epoch, for `consume --from @TIME` and offset resets by time: ISO 8601
 * date-times, epoch milliseconds and durations before now.
 * Computed with the civil-calendar arithmetic of Howard Hinnant's days_from_civil, so the result does not depend
 * on the process's time zone or locale. */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"

/* Read exactly n digits at *s. Returns the value or -1. */
static int digits(const char **s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return -1;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	return v;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* The zone suffix: Z, +HH, +HHMM, +HH:MM (or -). *offset_min is minutes east of UTC. */
static int zone_parse(const char *s, int *offset_min)
{
	int sign, h, m = 0;

	*offset_min = 0;
	if (*s == '\0')
		return 0;
	if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0')
		return 0;
	if (*s != '+' && *s != '-')
		return -EINVAL;
	sign = *s++ == '-' ? -1 : 1;
	if ((h = digits(&s, 2)) < 0 || h > 23)
		return -EINVAL;
	if (*s == ':')
		s++;
	if (*s != '\0' && ((m = digits(&s, 2)) < 0 || m > 59))
		return -EINVAL;
	if (*s != '\0')
		return -EINVAL;
	*offset_min = sign * (h * 60 + m);
	return 0;
}

int sl_time_parse_iso8601(const char *s, int64_t *ms_out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, offset_min;

	if (s == NULL || strlen(s) < 10)
		return -EINVAL;
	if ((y = digits(&s, 4)) < 0 || *s++ != '-' || (mo = digits(&s, 2)) < 1 || mo > 12 || *s++ != '-' ||
	    (d = digits(&s, 2)) < 1 || d > days_in_month(y, mo))
		return -EINVAL;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		s++;
		if ((h = digits(&s, 2)) < 0 || h > 23 || *s++ != ':' || (mi = digits(&s, 2)) < 0 || mi > 59)
			return -EINVAL;
		if (*s == ':') {
			s++;
			if ((sec = digits(&s, 2)) < 0 || sec > 59)
				return -EINVAL;
			if (*s == '.' || *s == ',') {
				int n = 0, scale = 100;

				s++;
				/* Up to nanoseconds; kept to the millisecond, truncating. */
				while (*s >= '0' && *s <= '9' && n < 9) {
					ms += (*s - '0') * scale;
					scale /= 10;
					s++;
					n++;
				}
				if (n == 0)
					return -EINVAL;
			}
		}
	}
	if (zone_parse(s, &offset_min) != 0)
		return -EINVAL;
	*ms_out =
	        ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - (int64_t)offset_min * 60) * 1000 + ms;
	return 0;
}

int sl_time_parse(const char *s, int64_t now_ms, int64_t *ms_out)
{
	int64_t v;

	if (s == NULL || s[0] == '\0')
		return -EINVAL;
	if (s[0] == '-') {
		if (sl_duration_parse(s + 1, &v) != 0 || v > now_ms)
			return -EINVAL;
		*ms_out = now_ms - v;
		return 0;
	}
	if (strspn(s, "0123456789") == strlen(s)) {
		/* A date-time starts YYYY-: all digits is an epoch time in milliseconds. */
		v = 0;
		for (; *s != '\0'; s++) {
			if (v > (INT64_MAX - (*s - '0')) / 10)
				return -EINVAL;
			v = v * 10 + (*s - '0');
		}
		*ms_out = v;
		return 0;
	}
	return sl_time_parse_iso8601(s, ms_out);
}
