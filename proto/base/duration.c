/* Duration parsing and formatting; the forms and rules are in duration.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "proto/base/duration.h"

#define MS_PER_SECOND 1000LL
#define MS_PER_MINUTE (60 * MS_PER_SECOND)
#define MS_PER_HOUR   (60 * MS_PER_MINUTE)
#define MS_PER_DAY    (24 * MS_PER_HOUR)
#define MS_PER_WEEK   (7 * MS_PER_DAY)

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* An unsigned decimal number at *s (at least one digit) into *v; -EINVAL on overflow. */
static int number(const char **s, int64_t *v)
{
	const char *p = *s;

	*v = 0;
	if (!is_digit(*p))
		return -EINVAL;
	for (; is_digit(*p); p++) {
		if (*v > (INT64_MAX - (*p - '0')) / 10)
			return -EINVAL;
		*v = *v * 10 + (*p - '0');
	}
	*s = p;
	return 0;
}

/* *total += n * unit_ms, refusing overflow. */
static int add_units(int64_t *total, int64_t n, int64_t unit_ms)
{
	if (n > (INT64_MAX - *total) / unit_ms)
		return -EINVAL;
	*total += n * unit_ms;
	return 0;
}

int sl_duration_parse_iso8601(const char *s, int64_t *ms_out)
{
	/* Designators in the order they may appear, each at most once; the time part starts at index 2. */
	static const char designators[] = "WDHMS";
	static const int64_t unit_ms[] = {MS_PER_WEEK, MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, MS_PER_SECOND};
	int64_t total = 0;
	int next = 0, parts = 0;
	bool in_time = false;

	if (s == NULL || (*s != 'P' && *s != 'p'))
		return -EINVAL;
	s++;
	while (*s != '\0') {
		int64_t n, frac_ms = 0;
		const char *d;
		char upper;
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
			if (!is_digit(*s))
				return -EINVAL;
			for (; is_digit(*s); s++, scale /= 10)
				frac_ms += (*s - '0') * scale;
			if (*s != 'S' && *s != 's')
				return -EINVAL;
		}
		upper = *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
		d = upper != '\0' ? strchr(designators, upper) : NULL;
		if (d == NULL)
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

/* The short form's units, largest first; a group's unit must come after the previous group's. */
static const struct {
	const char *name;
	int64_t ms;
} short_units[] = {
        {"w", MS_PER_WEEK},   {"d", MS_PER_DAY},    {"h", MS_PER_HOUR},
        {"m", MS_PER_MINUTE}, {"s", MS_PER_SECOND}, {"ms", 1},
};
#define SHORT_UNIT_COUNT ((int)(sizeof(short_units) / sizeof(short_units[0])))

static int parse_short(const char *s, int64_t *ms_out)
{
	int64_t total = 0;
	int next = 0;

	if (*s == '\0')
		return -EINVAL;
	while (*s != '\0') {
		int64_t n;
		int idx = -1;

		if (number(&s, &n) != 0)
			return -EINVAL;
		/* "ms" before "m": the longest name that matches. */
		for (int i = 0; i < SHORT_UNIT_COUNT; i++) {
			size_t len = strlen(short_units[i].name);

			if (strncmp(s, short_units[i].name, len) == 0 && (s[len] == '\0' || is_digit(s[len])) &&
			    (idx < 0 || len > strlen(short_units[idx].name)))
				idx = i;
		}
		if (idx < next)
			return -EINVAL; /* no unit, an unknown one, or out of order ("10m1h", "1s1s") */
		if (add_units(&total, n, short_units[idx].ms) != 0)
			return -EINVAL;
		s += strlen(short_units[idx].name);
		next = idx + 1;
	}
	*ms_out = total;
	return 0;
}

int sl_duration_parse(const char *s, int64_t *ms_out)
{
	if (s == NULL)
		return -EINVAL;
	if (s[0] == 'P' || s[0] == 'p')
		return sl_duration_parse_iso8601(s, ms_out);
	return parse_short(s, ms_out);
}

void sl_duration_format(int64_t ms, char *buf, size_t bytes)
{
	static const struct {
		const char *name;
		int64_t ms;
	} units[] = {{"d", MS_PER_DAY}, {"h", MS_PER_HOUR}, {"m", MS_PER_MINUTE}, {"s", MS_PER_SECOND}};
	const char *sign = "";
	uint64_t v;

	if (ms < 0) {
		sign = "-";
		v = (uint64_t)0 - (uint64_t)ms;
	} else {
		v = (uint64_t)ms;
	}
	if (v == 0) {
		snprintf(buf, bytes, "0s");
		return;
	}
	if (v < 1000) {
		snprintf(buf, bytes, "%s%llums", sign, (unsigned long long)v);
		return;
	}
	if (v < 10000 && v % 1000 >= 100) {
		/* Under ten seconds a tenth still matters: 1.5s, not 1s. */
		snprintf(buf, bytes, "%s%llu.%llus", sign, (unsigned long long)(v / 1000),
		         (unsigned long long)(v % 1000 / 100));
		return;
	}
	for (int i = 0; i < 4; i++) {
		uint64_t unit = (uint64_t)units[i].ms;

		if (v < unit)
			continue;
		uint64_t major = v / unit, rest = v % unit;

		if (i == 3 || rest / (uint64_t)units[i + 1].ms == 0)
			snprintf(buf, bytes, "%s%llu%s", sign, (unsigned long long)major, units[i].name);
		else
			snprintf(buf, bytes, "%s%llu%s%llu%s", sign, (unsigned long long)major, units[i].name,
			         (unsigned long long)(rest / (uint64_t)units[i + 1].ms), units[i + 1].name);
		return;
	}
}
