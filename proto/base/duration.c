/* Durations as operators write them, for every flag that takes one (broker and tools alike): a number with a
 * unit (500ms, 30s, 5m, 2h, 7d) or ISO 8601 (PT30M, P1DT2H), as ../shared/CLI.md asks. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/base/duration.h"

/* Read an unsigned decimal number at *s into *v (at least one digit). */
static int number(const char **s, int64_t *v)
{
	const char *p = *s;

	*v = 0;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		if (*v > (INT64_MAX - (*p - '0')) / 10)
			return -EINVAL;
		*v = *v * 10 + (*p - '0');
		p++;
	}
	*s = p;
	return 0;
}

/* total += n * unit_ms, refusing overflow. */
static int add_units(int64_t *total, int64_t n, int64_t unit_ms)
{
	if (n > (INT64_MAX - *total) / unit_ms)
		return -EINVAL;
	*total += n * unit_ms;
	return 0;
}

int sl_duration_parse_iso8601(const char *s, int64_t *ms_out)
{
	/* Designators in the order they may appear, each at most once; the time part starts at index 3. */
	static const char designators[] = "WDHMS";
	static const int64_t unit_ms[] = {7 * 86400000LL, 86400000LL, 3600000LL, 60000LL, 1000LL};
	int64_t total = 0;
	int next = 0, parts = 0;
	bool in_time = false;

	if (s == NULL || (*s != 'P' && *s != 'p'))
		return -EINVAL;
	s++;
	while (*s != '\0') {
		int64_t n, frac_ms = 0;
		const char *d;
		int idx;

		if (*s == 'T' || *s == 't') {
			if (in_time)
				return -EINVAL;
			in_time = true;
			next = next < 2 ? 2 : next;
			s++;
			if (*s == '\0')
				return -EINVAL; /* "PT" or "P1DT": a T with nothing after it */
			continue;
		}
		if (number(&s, &n) != 0)
			return -EINVAL;
		if (*s == '.' || *s == ',') {
			int64_t scale = 100;

			/* A fraction is allowed on seconds only; kept to the millisecond, truncating. */
			s++;
			if (!isdigit((unsigned char)*s))
				return -EINVAL;
			for (; isdigit((unsigned char)*s); s++, scale /= 10)
				frac_ms += (*s - '0') * scale;
			if (*s != 'S' && *s != 's')
				return -EINVAL;
		}
		d = strchr(designators, toupper((unsigned char)*s));
		if (*s == '\0' || d == NULL)
			return -EINVAL; /* also years (Y) and a month M before T: their length depends on the date */
		idx = (int)(d - designators);
		/* M is minutes in the time part; in the date part it would be months. */
		if ((idx >= 2) != in_time || idx < next)
			return -EINVAL;
		if (add_units(&total, n, unit_ms[idx]) != 0 || total > INT64_MAX - frac_ms)
			return -EINVAL;
		total += frac_ms;
		next = idx + 1;
		parts++;
		s++;
	}
	if (parts == 0)
		return -EINVAL;
	*ms_out = total;
	return 0;
}

int sl_duration_parse_ms(const char *s, int64_t *ms_out)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	int64_t n;

	if (s == NULL)
		return -EINVAL;
	if (*s == 'P' || *s == 'p')
		return sl_duration_parse_iso8601(s, ms_out);
	if (number(&s, &n) != 0)
		return -EINVAL;
	if (*s == '\0' && n == 0) {
		*ms_out = 0; /* zero needs no unit */
		return 0;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s, units[i].unit) != 0)
			continue;
		if (n > INT64_MAX / units[i].ms)
			return -EINVAL;
		*ms_out = n * units[i].ms;
		return 0;
	}
	return -EINVAL;
}
