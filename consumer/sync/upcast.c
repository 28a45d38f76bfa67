/* Upcasts of old schema versions (upcast.h): path mappings parsed once, applied to a jansson tree per record, and
 * shared-object hooks. */
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/upcast.h"
#include "consumer/sync/value.h"

/* Segments of one path: deep enough for any entity. */
#define PATH_SEGMENTS_MAX 32

enum step_kind { STEP_MOVE, STEP_SET, STEP_DEL };

struct path {
	char *segments[PATH_SEGMENTS_MAX];
	uint32_t count;
};

struct step {
	enum step_kind kind;
	struct path to;   /* move, set: where; del: what */
	struct path from; /* move */
	json_t *literal;  /* set */
};

struct mapping {
	int32_t from_version;
	struct step steps[SL_UPCAST_STEPS_MAX];
	uint32_t step_count;
};

typedef int (*hook_fn)(int32_t from_version, const char *value, size_t value_len, char **out, size_t *out_len,
                       int32_t *to_version);

struct sl_upcast {
	struct mapping *mappings[SL_UPCAST_MAPPINGS_MAX];
	uint32_t mapping_count;
	void *hook_lib;
	hook_fn hook;
	char *hook_out; /* the hook's last result, freed on the next */
	struct sl_json_buf out;
};

int sl_upcast_new(struct sl_upcast **out)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? 0 : -ENOMEM;
}

static void path_free(struct path *p)
{
	for (uint32_t i = 0; i < p->count; i++)
		free(p->segments[i]);
	p->count = 0;
}

static void step_free(struct step *st)
{
	path_free(&st->to);
	path_free(&st->from);
	json_decref(st->literal);
	st->literal = NULL;
}

static void mapping_free(struct mapping *m)
{
	for (uint32_t i = 0; i < m->step_count; i++)
		step_free(&m->steps[i]);
	free(m);
}

void sl_upcast_free(struct sl_upcast *u)
{
	if (u == NULL)
		return;
	for (uint32_t i = 0; i < u->mapping_count; i++)
		mapping_free(u->mappings[i]);
	if (u->hook_lib != NULL)
		dlclose(u->hook_lib);
	free(u->hook_out);
	sl_json_buf_free(&u->out);
	free(u);
}

/* ---- parsing ---- */

/* Parse a path at *s (".a.b", ."a key"), advancing *s past it. 0 or -EINVAL. */
static int path_parse(const char **s, struct path *out)
{
	const char *p = *s;

	out->count = 0;
	while (*p == '.') {
		const char *start;
		size_t len;

		if (out->count == PATH_SEGMENTS_MAX)
			return -EINVAL;
		p++;
		if (*p == '"') {
			start = ++p;
			while (*p != '\0' && *p != '"')
				p++;
			if (*p != '"')
				return -EINVAL;
			len = (size_t)(p - start);
			p++;
		} else {
			start = p;
			while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			       *p == '_' || *p == '-')
				p++;
			len = (size_t)(p - start);
		}
		if (len == 0)
			return -EINVAL;
		out->segments[out->count] = strndup(start, len);
		if (out->segments[out->count] == NULL)
			return -ENOMEM;
		out->count++;
	}
	*s = p;
	return out->count > 0 ? 0 : -EINVAL;
}

/* The end of the step starting at s: the first comma outside quotes and brackets, or the end. */
static const char *step_end(const char *s)
{
	int depth = 0;
	bool quoted = false;

	for (; *s != '\0'; s++) {
		if (quoted) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			else if (*s == '"')
				quoted = false;
		} else if (*s == '"') {
			quoted = true;
		} else if (*s == '[' || *s == '{' || *s == '(') {
			depth++;
		} else if (*s == ']' || *s == '}' || *s == ')') {
			depth--;
		} else if (*s == ',' && depth == 0) {
			break;
		}
	}
	return s;
}

static int step_parse(const char *text, struct step *st, char *err, size_t err_bytes)
{
	const char *p = text;
	int rc;

	memset(st, 0, sizeof(*st));
	if (strncmp(p, "del(", 4) == 0) {
		p += 4;
		st->kind = STEP_DEL;
		rc = path_parse(&p, &st->to);
		if (rc != 0 || strcmp(p, ")") != 0)
			goto bad;
		return 0;
	}
	if (path_parse(&p, &st->to) != 0 || *p != '=')
		goto bad;
	p++;
	if (*p == '.') {
		st->kind = STEP_MOVE;
		if (path_parse(&p, &st->from) != 0 || *p != '\0')
			goto bad;
		return 0;
	}
	st->kind = STEP_SET;
	st->literal = json_loads(p, JSON_DECODE_ANY, NULL);
	if (st->literal == NULL)
		goto bad;
	return 0;
bad:
	/* A refused step may hold the segments of the paths parsed before the mistake. */
	step_free(st);
	sl_error_set(
	        err, err_bytes,
	        "upcast step '%s': use .to=.from (move), .path=JSON (set) or del(.path), paths as .a.b or .\"a key\"",
	        text);
	return -EINVAL;
}

int sl_upcast_add_mapping(struct sl_upcast *u, const char *spec, char *err, size_t err_bytes)
{
	const char *eq = strchr(spec, '='), *p;
	struct mapping *m;
	char *end, step[1024];
	long version;

	errno = 0;
	version = strtol(spec, &end, 10);
	if (eq == NULL || end != eq || spec[0] < '0' || spec[0] > '9' || errno != 0 || version < 1 ||
	    version >= INT32_MAX || eq[1] == '\0') {
		sl_error_set(err, err_bytes,
		             "--upcast '%s': use VERSION=MAPPING, such as 1=.contact.email=.email,del(.legacy)", spec);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < u->mapping_count; i++)
		if (u->mappings[i]->from_version == (int32_t)version) {
			sl_error_set(err, err_bytes, "--upcast: version %ld has two mappings: give each version one",
			             version);
			return -EINVAL;
		}
	if (u->mapping_count == SL_UPCAST_MAPPINGS_MAX) {
		sl_error_set(err, err_bytes, "--upcast: more than %d mappings", SL_UPCAST_MAPPINGS_MAX);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->from_version = (int32_t)version;
	for (p = eq + 1; *p != '\0';) {
		const char *e = step_end(p);
		int rc;

		if ((size_t)(e - p) >= sizeof(step) || e == p || m->step_count == SL_UPCAST_STEPS_MAX) {
			sl_error_set(err, err_bytes, "--upcast '%s': an empty or overlong step, or more than %d steps",
			             spec, SL_UPCAST_STEPS_MAX);
			mapping_free(m);
			return -EINVAL;
		}
		snprintf(step, sizeof(step), "%.*s", (int)(e - p), p);
		rc = step_parse(step, &m->steps[m->step_count], err, err_bytes);
		if (rc != 0) {
			mapping_free(m);
			return rc;
		}
		m->step_count++;
		p = *e == ',' ? e + 1 : e;
	}
	u->mappings[u->mapping_count++] = m;
	return 0;
}

int sl_upcast_add_hook(struct sl_upcast *u, const char *path, char *err, size_t err_bytes)
{
	void *lib;

	if (u->hook_lib != NULL) {
		sl_error_set(err, err_bytes, "--upcast-hook: one hook only");
		return -EINVAL;
	}
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		sl_error_set(err, err_bytes, "--upcast-hook %s: %s", path, dlerror());
		return -EINVAL;
	}
	/* POSIX's way from an object pointer to a function pointer. */
	*(void **)&u->hook = dlsym(lib, "synclog_upcast");
	if (u->hook == NULL) {
		sl_error_set(err, err_bytes, "--upcast-hook %s: no function synclog_upcast in it", path);
		dlclose(lib);
		return -EINVAL;
	}
	u->hook_lib = lib;
	return 0;
}

/* ---- applying ---- */

static json_t *path_get(json_t *root, const struct path *p)
{
	json_t *v = root;

	for (uint32_t i = 0; v != NULL && i < p->count; i++)
		v = json_is_object(v) ? json_object_get(v, p->segments[i]) : NULL;
	return v;
}

static void path_del(json_t *root, const struct path *p)
{
	struct path parent = *p;
	json_t *o;

	parent.count--;
	o = parent.count > 0 ? path_get(root, &parent) : root;
	if (json_is_object(o))
		json_object_del(o, p->segments[p->count - 1]);
}

/* Set v (a reference taken) at p, creating the objects on the way. -EBADMSG when one is something else. */
static int path_set(json_t *root, const struct path *p, json_t *v, char *why, size_t why_bytes)
{
	json_t *o = root;

	for (uint32_t i = 0; i + 1 < p->count; i++) {
		json_t *next = json_object_get(o, p->segments[i]);

		if (next == NULL) {
			next = json_object();
			if (next == NULL || json_object_set_new(o, p->segments[i], next) != 0) {
				json_decref(v);
				return -ENOMEM;
			}
		} else if (!json_is_object(next)) {
			snprintf(why, why_bytes, "member %s is not an object: cannot set a field inside it",
			         p->segments[i]);
			json_decref(v);
			return -EBADMSG;
		}
		o = next;
	}
	return json_object_set_new(o, p->segments[p->count - 1], v) == 0 ? 0 : -ENOMEM;
}

static int mapping_apply(struct sl_upcast *u, const struct mapping *m, const uint8_t *value, size_t len,
                         const uint8_t **out, size_t *out_len, char *why, size_t why_bytes)
{
	json_t *root = json_loadb((const char *)value, len, 0, NULL);
	int rc = 0;

	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(why, why_bytes, "the value is not a JSON object");
		return -EBADMSG;
	}
	for (uint32_t i = 0; rc == 0 && i < m->step_count; i++) {
		const struct step *st = &m->steps[i];
		json_t *v;

		switch (st->kind) {
		case STEP_MOVE:
			v = path_get(root, &st->from);
			if (v == NULL)
				break;
			json_incref(v);
			path_del(root, &st->from);
			rc = path_set(root, &st->to, v, why, why_bytes);
			break;
		case STEP_SET:
			rc = path_set(root, &st->to, json_deep_copy(st->literal), why, why_bytes);
			break;
		case STEP_DEL:
			path_del(root, &st->to);
			break;
		}
	}
	u->out.len = 0;
	if (rc == 0)
		rc = sl_value_json_write(root, &u->out);
	json_decref(root);
	if (rc == -ENOMEM)
		snprintf(why, why_bytes, "out of memory");
	if (rc != 0)
		return rc == -ENOMEM ? -ENOMEM : -EBADMSG;
	*out = (const uint8_t *)u->out.data;
	*out_len = u->out.len;
	return 0;
}

int sl_upcast_cb(const struct sl_apply_record *r, const uint8_t *value, size_t len, int32_t *version_inout,
                 const uint8_t **out, size_t *out_len, char *why, size_t why_bytes, void *cb_arg)
{
	struct sl_upcast *u = cb_arg;
	char *hook_out = NULL;
	size_t hook_len = 0;
	int32_t to = 0;
	int rc;

	(void)r;
	for (uint32_t i = 0; i < u->mapping_count; i++) {
		if (u->mappings[i]->from_version != *version_inout)
			continue;
		rc = mapping_apply(u, u->mappings[i], value, len, out, out_len, why, why_bytes);
		if (rc == 0)
			(*version_inout)++;
		return rc;
	}
	if (u->hook == NULL)
		return -ENOENT;
	rc = u->hook(*version_inout, (const char *)value, len, &hook_out, &hook_len, &to);
	if (rc == 1)
		return -ENOENT;
	if (rc != 0 || hook_out == NULL || to == *version_inout) {
		free(hook_out);
		snprintf(why, why_bytes, "the upcast hook refused the value (returned %d)", rc);
		return -EBADMSG;
	}
	free(u->hook_out);
	u->hook_out = hook_out;
	*out = (const uint8_t *)hook_out;
	*out_len = hook_len;
	*version_inout = to;
	return 0;
}
