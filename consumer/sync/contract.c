/* Contract files (contract.h): YAML through libyaml's document loader, or JSON through jansson, both turned into
 * one jansson tree that one set of checks reads, so that a contract means the same whichever way it was written.
 * For YAML the loader also notes the line of every key, so that a refusal names the line the operator must fix.
 *
 * Invariants of a parsed contract:
 *   1. Every name in owners and fields is 1 to SL_CONTRACT_NAME_BYTES_MAX characters of [A-Za-z0-9_.-].
 *   2. No field is owned by two systems, nor both owned and derived.
 *   3. json is the normalized object (contract.h), and parsing it gives the same contract. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/contract.h"
#include "proto/base/duration.h"

/* Nodes a YAML file may expand to. Aliases make a small file a large tree (the "billion laughs"); a contract has
 * a few dozen nodes, so this bounds the work and memory of a hostile file without refusing a real one. */
#define YAML_NODES_MAX 20000
/* Keys whose lines are remembered for messages. */
#define LINES_MAX      512
#define PATH_BYTES_MAX 256

struct line_note {
	char path[PATH_BYTES_MAX];
	int line; /* 1-based */
};

struct ctx {
	char *err;
	size_t err_bytes;
	struct line_note lines[LINES_MAX];
	uint32_t line_count;
	uint32_t nodes;
};

/* The line of path's key: noted last (a value that spans lines is noted first, at its own start). */
static int line_of(const struct ctx *x, const char *path)
{
	for (uint32_t i = x->line_count; i-- > 0;)
		if (strcmp(x->lines[i].path, path) == 0)
			return x->lines[i].line;
	return 0;
}

/* "line N: PATH: message" (the line only when known). Returns -EINVAL. */
static int refuse(struct ctx *x, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(struct ctx *x, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int line = line_of(x, path);

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		sl_error_set(x->err, x->err_bytes, "line %d: %s: %s", line, path, msg);
	else
		sl_error_set(x->err, x->err_bytes, "%s: %s", path[0] != '\0' ? path : "contract", msg);
	return -EINVAL;
}

/* ---- YAML to a jansson tree ---- */

static json_t *yaml_scalar(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	char *end;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, len);
	if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0)
		return json_false();
	if (strspn(s + (s[0] == '-'), "0123456789") == len - (s[0] == '-') && len > (size_t)(s[0] == '-')) {
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_integer(v);
	}
	if (strspn(s, "0123456789.eE+-") == len && strpbrk(s, "0123456789") != NULL) {
		errno = 0;
		double d = strtod(s, &end);
		if (errno == 0 && *end == '\0' && isfinite(d))
			return json_real(d);
	}
	return json_stringn(s, len);
}

static void line_note(struct ctx *x, const char *path, const yaml_node_t *n)
{
	if (x->line_count < LINES_MAX) {
		snprintf(x->lines[x->line_count].path, PATH_BYTES_MAX, "%s", path);
		x->lines[x->line_count].line = (int)n->start_mark.line + 1;
		x->line_count++;
	}
}

static int yaml_to_json(struct ctx *x, yaml_document_t *doc, yaml_node_t *n, const char *path, json_t **out)
{
	char sub[PATH_BYTES_MAX];

	*out = NULL;
	if (++x->nodes > YAML_NODES_MAX)
		return refuse(x, path, "more than %d nodes (aliases expanding?): a contract is far smaller",
		              YAML_NODES_MAX);
	line_note(x, path, n);
	if (n->type == YAML_SCALAR_NODE) {
		*out = yaml_scalar(n);
		return *out != NULL ? 0 : -ENOMEM;
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		json_t *a = json_array();
		uint32_t i = 0;

		if (a == NULL)
			return -ENOMEM;
		for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
			json_t *v;
			int rc;

			snprintf(sub, sizeof(sub), "%s[%u]", path, i);
			rc = yaml_to_json(x, doc, yaml_document_get_node(doc, *it), sub, &v);
			if (rc == 0 && json_array_append_new(a, v) != 0)
				rc = -ENOMEM;
			if (rc != 0) {
				json_decref(a);
				return rc;
			}
		}
		*out = a;
		return 0;
	}
	if (n->type == YAML_MAPPING_NODE) {
		json_t *o = json_object();

		if (o == NULL)
			return -ENOMEM;
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			json_t *v;
			int rc;

			if (k == NULL || k->type != YAML_SCALAR_NODE) {
				json_decref(o);
				return refuse(x, path, "a key must be a plain name, not a list or a mapping");
			}
			snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] != '\0' ? "." : "",
			         (const char *)k->data.scalar.value);
			if (json_object_get(o, (const char *)k->data.scalar.value) != NULL) {
				json_decref(o);
				line_note(x, sub, k);
				return refuse(x, sub, "given twice: which one is meant?");
			}
			rc = yaml_to_json(x, doc, yaml_document_get_node(doc, p->value), sub, &v);
			/* The key's own line: a value that spans lines starts on the next one. */
			line_note(x, sub, k);
			if (rc == 0 && json_object_set_new(o, (const char *)k->data.scalar.value, v) != 0)
				rc = -ENOMEM;
			if (rc != 0) {
				json_decref(o);
				return rc;
			}
		}
		*out = o;
		return 0;
	}
	return refuse(x, path, "an empty node");
}

static int yaml_load(struct ctx *x, const char *text, size_t len, json_t **out)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root;
	int rc;

	*out = NULL;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		sl_error_set(x->err, x->err_bytes, "line %zu column %zu: not YAML: %s%s%s",
		             parser.problem_mark.line + 1, parser.problem_mark.column + 1,
		             parser.problem != NULL ? parser.problem : "syntax error",
		             parser.context != NULL ? " " : "", parser.context != NULL ? parser.context : "");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	root = yaml_document_get_root_node(&doc);
	if (root == NULL) {
		rc = refuse(x, "", "the file is empty: a contract names at least source_of_truth.system");
	} else if (root->type != YAML_MAPPING_NODE) {
		rc = refuse(x, "", "the file must be a mapping of keys (source_of_truth:, delivery:, ...)");
	} else {
		rc = yaml_to_json(x, &doc, root, "", out);
	}
	yaml_document_delete(&doc);
	if (rc == 0) {
		/* One contract per file: a second document would be silently ignored. */
		if (!yaml_parser_load(&parser, &extra)) {
			rc = refuse(x, "", "not YAML after the first document");
		} else {
			if (yaml_document_get_root_node(&extra) != NULL)
				rc = refuse(x, "", "the file holds more than one YAML document: one contract per file");
			yaml_document_delete(&extra);
		}
		if (rc != 0) {
			json_decref(*out);
			*out = NULL;
		}
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- checks ---- */

static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SL_CONTRACT_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

static void path_join(char *out, const char *parent, const char *key)
{
	snprintf(out, PATH_BYTES_MAX, "%s%s%s", parent, parent[0] != '\0' ? "." : "", key);
}

/* Refuse a key of obj not in allowed (a NULL-terminated list). */
static int keys_check(struct ctx *x, json_t *obj, const char *path, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		bool ok = false;
		char list[256] = "", sub[PATH_BYTES_MAX];
		size_t at = 0;

		(void)v;
		for (const char *const *a = allowed; *a != NULL; a++)
			ok = ok || strcmp(*a, key) == 0;
		if (ok)
			continue;
		for (const char *const *a = allowed; *a != NULL && at < sizeof(list); a++)
			at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", a == allowed ? "" : ", ", *a);
		path_join(sub, path, key);
		return refuse(x, sub, "unknown key; %s takes %s", path[0] != '\0' ? path : "the contract", list);
	}
	return 0;
}

/* The member key of obj as an object (NULL when absent); -EINVAL when it is something else. */
static int object_get(struct ctx *x, json_t *obj, const char *path, const char *key, json_t **out)
{
	char sub[PATH_BYTES_MAX];
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	path_join(sub, path, key);
	if (!json_is_object(v))
		return refuse(x, sub, "must be a mapping of keys");
	*out = v;
	return 0;
}

/* A string member (NULL when absent). */
static int string_get(struct ctx *x, json_t *obj, const char *path, const char *key, size_t max, const char **out)
{
	char sub[PATH_BYTES_MAX];
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	path_join(sub, path, key);
	if (!json_is_string(v) || json_string_length(v) == 0)
		return refuse(x, sub, "must be text");
	if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v))
		return refuse(x, sub, "longer than %zu characters (or holds a NUL)", max);
	*out = json_string_value(v);
	return 0;
}

/* One of names (NULL-terminated), as its index; *out unchanged when absent. */
static int enum_get(struct ctx *x, json_t *obj, const char *path, const char *key, const char *const *names, int *out)
{
	char sub[PATH_BYTES_MAX], list[200] = "";
	const char *s;
	size_t at = 0;
	int rc = string_get(x, obj, path, key, 64, &s);

	if (rc != 0 || s == NULL)
		return rc;
	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], s) == 0) {
			*out = i;
			return 0;
		}
	for (int i = 0; names[i] != NULL && at < sizeof(list); i++)
		at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", i ? ", " : "", names[i]);
	path_join(sub, path, key);
	return refuse(x, sub, "'%s' is not one of %s", s, list);
}

/* A duration member (written as text: 30s, 5m, 7d, PT1H; or a number of milliseconds), > 0. */
static int duration_get(struct ctx *x, json_t *obj, const char *path, const char *key, int64_t *out)
{
	char sub[PATH_BYTES_MAX];
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return 0;
	path_join(sub, path, key);
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v) || sl_duration_parse(json_string_value(v), out) != 0 || *out <= 0)
		return refuse(x, sub, "must be a duration above 0: 500ms, 30s, 5m, 2h, 7d or ISO 8601 (PT1H)");
	return 0;
}

/* fields_owned as a list (the source of truth's) or a map from system to list; fields_derived as a list. */
struct fields_builder {
	struct sl_contract *c;
	uint32_t cap;
};

static int field_add(struct ctx *x, struct fields_builder *b, const char *path, json_t *v)
{
	struct sl_contract *c = b->c;
	const char *name = json_is_string(v) ? json_string_value(v) : "";

	if (!json_is_string(v) || !name_valid(name))
		return refuse(x, path, "a field name is 1 to %d letters, digits, '_', '-' or '.'",
		              SL_CONTRACT_NAME_BYTES_MAX);
	for (uint32_t i = 0; i < c->field_count; i++)
		if (strcmp(c->fields[i], name) == 0)
			return refuse(x, path, "field '%s' is listed twice (owned or derived once only)", name);
	if (c->field_count == SL_CONTRACT_FIELDS_MAX)
		return refuse(x, path, "more than %d fields", SL_CONTRACT_FIELDS_MAX);
	if (c->field_count == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 16;
		char **f = realloc(c->fields, cap * sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		c->fields = f;
		b->cap = cap;
	}
	c->fields[c->field_count] = strdup(name);
	if (c->fields[c->field_count] == NULL)
		return -ENOMEM;
	c->field_count++;
	return 0;
}

static int field_list_add(struct ctx *x, struct fields_builder *b, const char *path, json_t *list)
{
	char sub[PATH_BYTES_MAX];
	size_t i;
	json_t *v;

	if (!json_is_array(list))
		return refuse(x, path, "must be a list of field names: [status, plan]");
	json_array_foreach(list, i, v)
	{
		int rc;

		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if ((rc = field_add(x, b, sub, v)) != 0)
			return rc;
	}
	return 0;
}

static int owner_add(struct ctx *x, struct fields_builder *b, const char *path, const char *system, json_t *list)
{
	struct sl_contract *c = b->c;
	struct sl_contract_owner *o;
	int rc;

	if (!name_valid(system))
		return refuse(x, path, "a system name is 1 to %d letters, digits, '_', '-' or '.'",
		              SL_CONTRACT_NAME_BYTES_MAX);
	for (uint32_t i = 0; i < c->owner_count; i++)
		if (strcmp(c->owners[i].system, system) == 0)
			return refuse(x, path, "system '%s' is listed twice", system);
	if (c->owner_count == SL_CONTRACT_SYSTEMS_MAX)
		return refuse(x, path, "more than %d systems own fields", SL_CONTRACT_SYSTEMS_MAX);
	o = &c->owners[c->owner_count++];
	snprintf(o->system, sizeof(o->system), "%s", system);
	o->field_first = c->field_count;
	rc = field_list_add(x, b, path, list);
	o->field_count = c->field_count - o->field_first;
	return rc;
}

static int ownership_check(struct ctx *x, struct sl_contract *c, json_t *root, json_t *norm)
{
	struct fields_builder b = {.c = c};
	json_t *owned = json_object_get(root, "fields_owned"), *derived = json_object_get(root, "fields_derived");
	json_t *map = json_object(), *list;
	const char *system;
	json_t *v;
	int rc = 0;

	if (map == NULL)
		return -ENOMEM;
	if (owned != NULL && !json_is_null(owned)) {
		if (json_is_array(owned)) {
			rc = owner_add(x, &b, "fields_owned", c->source_of_truth, owned);
		} else if (json_is_object(owned)) {
			json_object_foreach(owned, system, v)
			{
				char sub[PATH_BYTES_MAX];

				path_join(sub, "fields_owned", system);
				if ((rc = owner_add(x, &b, sub, system, v)) != 0)
					break;
			}
		} else {
			rc = refuse(x, "fields_owned",
			            "must be a list of fields (the source of truth's) or a mapping "
			            "from system to fields");
		}
	}
	c->derived_first = c->field_count;
	if (rc == 0 && derived != NULL && !json_is_null(derived))
		rc = field_list_add(x, &b, "fields_derived", derived);
	c->derived_count = c->field_count - c->derived_first;
	for (uint32_t i = 0; rc == 0 && i < c->owner_count; i++) {
		list = json_array();
		for (uint32_t f = 0; list != NULL && f < c->owners[i].field_count; f++)
			json_array_append_new(list, json_string(c->fields[c->owners[i].field_first + f]));
		if (list == NULL || json_object_set_new(map, c->owners[i].system, list) != 0)
			rc = -ENOMEM;
	}
	if (rc == 0 && c->owner_count > 0 && json_object_set(norm, "fields_owned", map) != 0)
		rc = -ENOMEM;
	if (rc == 0 && c->derived_count > 0 && json_object_set(norm, "fields_derived", derived) != 0)
		rc = -ENOMEM;
	json_decref(map);
	return rc;
}

static const char *const conflicts_names[] = {"version", "source-of-truth", "lww", "reject", NULL};

const char *sl_contract_conflicts_name(enum sl_contract_conflicts p)
{
	return (unsigned)p < 4 ? conflicts_names[p] : "?";
}

int sl_contract_conflicts_parse(const char *s, enum sl_contract_conflicts *out)
{
	for (int i = 0; conflicts_names[i] != NULL; i++)
		if (strcmp(s, conflicts_names[i]) == 0) {
			*out = (enum sl_contract_conflicts)i;
			return 0;
		}
	return -EINVAL;
}

static int conflicts_check(struct ctx *x, struct sl_contract *c, json_t *root, json_t *norm)
{
	static const char *const keys[] = {"policy", "max_clock_skew", NULL};
	json_t *v = json_object_get(root, "conflicts"), *obj, *out;
	int policy = SL_CONFLICTS_VERSION, rc;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		obj = json_pack("{s:O}", "policy", v);
	} else if (json_is_object(v)) {
		obj = json_incref(v);
	} else {
		return refuse(x, "conflicts",
		              "must be a policy (version, source-of-truth, lww, reject) or a mapping "
		              "{policy: lww, max_clock_skew: 2s}");
	}
	if (obj == NULL)
		return -ENOMEM;
	rc = keys_check(x, obj, "conflicts", keys);
	if (rc == 0 && json_object_get(obj, "policy") == NULL)
		rc = refuse(x, "conflicts", "policy is required: version, source-of-truth, lww or reject");
	if (rc == 0)
		rc = enum_get(x, obj, "conflicts", "policy", conflicts_names, &policy);
	if (rc == 0)
		rc = duration_get(x, obj, "conflicts", "max_clock_skew", &c->max_clock_skew_ms);
	c->conflicts = (enum sl_contract_conflicts)policy;
	if (rc == 0 && c->max_clock_skew_ms > 0 && c->conflicts != SL_CONFLICTS_LWW)
		rc = refuse(x, "conflicts.max_clock_skew", "only the lww policy compares clocks");
	if (rc == 0) {
		out = json_pack("{s:s}", "policy", conflicts_names[policy]);
		if (out != NULL && json_object_get(obj, "max_clock_skew") != NULL)
			json_object_set(out, "max_clock_skew", json_object_get(obj, "max_clock_skew"));
		if (out == NULL || json_object_set_new(norm, "conflicts", out) != 0)
			rc = -ENOMEM;
	}
	json_decref(obj);
	return rc;
}

static int delivery_check(struct ctx *x, struct sl_contract *c, json_t *d)
{
	static const char *const keys[] = {"model", "ordering", "duplicates", "without_idempotency_key",
	                                   "stale", "payload",  "fetch_url",  NULL};
	static const char *const models[] = {"shared-log", "event-push", "target-pull", NULL};
	static const char *const orderings[] = {"per-key", "global", "none", NULL};
	static const char *const duplicates[] = {"version", "idempotency-key", NULL};
	static const char *const missing[] = {"count", "refuse", NULL};
	static const char *const stale[] = {"log-and-drop", NULL};
	static const char *const payloads[] = {"fat", "thin", NULL};
	int model = 0, ordering = 0, dup = 0, miss = 0, st = 0, payload = 0, rc;
	const char *url;

	if ((rc = keys_check(x, d, "delivery", keys)) != 0 ||
	    (rc = enum_get(x, d, "delivery", "model", models, &model)) ||
	    (rc = enum_get(x, d, "delivery", "ordering", orderings, &ordering)) ||
	    (rc = enum_get(x, d, "delivery", "duplicates", duplicates, &dup)) ||
	    (rc = enum_get(x, d, "delivery", "without_idempotency_key", missing, &miss)) ||
	    (rc = enum_get(x, d, "delivery", "stale", stale, &st)) ||
	    (rc = enum_get(x, d, "delivery", "payload", payloads, &payload)) ||
	    (rc = string_get(x, d, "delivery", "fetch_url", SL_CONTRACT_SPEC_BYTES_MAX - 1, &url)))
		return rc;
	c->duplicates = (enum sl_contract_duplicates)dup;
	c->without_idempotency_key = (enum sl_contract_missing_ik)miss;
	c->thin = payload == 1;
	if (json_object_get(d, "without_idempotency_key") != NULL && c->duplicates != SL_DUPLICATES_IDEMPOTENCY_KEY)
		return refuse(x, "delivery.without_idempotency_key", "applies only with duplicates: idempotency-key");
	if (url != NULL) {
		if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
			return refuse(x, "delivery.fetch_url", "must be an http:// or https:// URL with {key} in it");
		if (strstr(url, "{key}") == NULL)
			return refuse(x, "delivery.fetch_url", "must hold {key}, where the entity's key goes");
		snprintf(c->fetch_url, sizeof(c->fetch_url), "%s", url);
	}
	return 0;
}

static int recovery_check(struct ctx *x, struct sl_contract *c, json_t *r)
{
	static const char *const keys[] = {"backfill_source",
	                                   "replay_owner",
	                                   "reconcile_every",
	                                   "mismatch_threshold",
	                                   "alert",
	                                   "retry_limit",
	                                   NULL};
	static const char *const alert_keys[] = {"stall_after", "notify", NULL};
	const char *s;
	json_t *alert, *t;
	int rc;

	if ((rc = keys_check(x, r, "recovery", keys)) != 0 ||
	    (rc = string_get(x, r, "recovery", "backfill_source", SL_CONTRACT_SPEC_BYTES_MAX - 1, &s)) != 0)
		return rc;
	if (s != NULL) {
		if (strncmp(s, "sqlite:", 7) != 0 && strncmp(s, "jsonl:", 6) != 0 && strncmp(s, "postgres", 8) != 0)
			return refuse(x, "recovery.backfill_source",
			              "'%s' is not a source of synclog backfill: sqlite:PATH:TABLE, jsonl:PATH or "
			              "postgresql://...",
			              s);
		snprintf(c->backfill_source, sizeof(c->backfill_source), "%s", s);
	}
	if ((rc = string_get(x, r, "recovery", "replay_owner", SL_CONTRACT_FREE_TEXT_BYTES_MAX, &s)) != 0 ||
	    (rc = duration_get(x, r, "recovery", "reconcile_every", &c->reconcile_every_ms)) != 0)
		return rc;
	if (s != NULL)
		snprintf(c->replay_owner, sizeof(c->replay_owner), "%s", s);
	t = json_object_get(r, "retry_limit");
	if (t != NULL && !json_is_null(t)) {
		if (!json_is_integer(t) || json_integer_value(t) < 1 ||
		    json_integer_value(t) > SL_CONTRACT_RETRY_LIMIT_MAX)
			return refuse(x, "recovery.retry_limit",
			              "must be a number of tries from 1 to %d (a thin event's fetch, then the "
			              "dead-letter topic)",
			              SL_CONTRACT_RETRY_LIMIT_MAX);
		c->retry_limit = (uint32_t)json_integer_value(t);
	}
	t = json_object_get(r, "mismatch_threshold");
	if (t != NULL && !json_is_null(t)) {
		if (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 1)
			return refuse(x, "recovery.mismatch_threshold",
			              "must be a ratio from 0 to 1 (0.0001 is 0.01%% of rows)");
		c->mismatch_threshold = json_number_value(t);
	}
	if ((rc = object_get(x, r, "recovery", "alert", &alert)) != 0 || alert == NULL)
		return rc;
	if ((rc = keys_check(x, alert, "recovery.alert", alert_keys)) != 0 ||
	    (rc = string_get(x, alert, "recovery.alert", "notify", SL_CONTRACT_FREE_TEXT_BYTES_MAX, &s)) != 0)
		return rc;
	if (s != NULL)
		snprintf(c->notify, sizeof(c->notify), "%s", s);
	return duration_get(x, alert, "recovery.alert", "stall_after", &c->stall_after_ms);
}

static int schema_check(struct ctx *x, struct sl_contract *c, json_t *s)
{
	static const char *const keys[] = {"versions", "on_unknown", NULL};
	static const char *const unknown[] = {"hold", "dead-letter", NULL};
	json_t *versions = json_object_get(s, "versions"), *v;
	int on_unknown = 0, rc;
	size_t i;

	if ((rc = keys_check(x, s, "schema", keys)) != 0 ||
	    (rc = enum_get(x, s, "schema", "on_unknown", unknown, &on_unknown)) != 0)
		return rc;
	c->on_unknown = (enum sl_contract_on_unknown)on_unknown;
	if (versions == NULL || json_is_null(versions))
		return 0;
	if (!json_is_array(versions) || json_array_size(versions) == 0)
		return refuse(x, "schema.versions", "must be a list of the schema versions consumers accept: [1, 2]");
	if (json_array_size(versions) > SL_CONTRACT_SCHEMA_VERSIONS_MAX)
		return refuse(x, "schema.versions", "more than %d versions", SL_CONTRACT_SCHEMA_VERSIONS_MAX);
	json_array_foreach(versions, i, v)
	{
		char sub[PATH_BYTES_MAX];

		snprintf(sub, sizeof(sub), "schema.versions[%zu]", i);
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > INT32_MAX)
			return refuse(x, sub, "a schema version is a whole number from 1 to 2147483647");
		c->schema_versions[c->schema_version_count++] = (int32_t)json_integer_value(v);
	}
	return 0;
}

static int deletes_check(struct ctx *x, struct sl_contract *c, json_t *d)
{
	static const char *const keys[] = {"mode", "retention", NULL};
	static const char *const modes[] = {"soft", "archive", "purge", NULL};
	int mode = -1, rc;

	if ((rc = keys_check(x, d, "deletes", keys)) != 0 ||
	    (rc = enum_get(x, d, "deletes", "mode", modes, &mode)) != 0)
		return rc;
	c->deletes_given = mode >= 0;
	c->deletes = mode >= 0 ? (enum sl_contract_deletes)mode : SL_DELETES_SOFT;
	return duration_get(x, d, "deletes", "retention", &c->delete_retention_ms);
}

static int impact_check(struct ctx *x, json_t *impact)
{
	const char *key;
	json_t *v;

	json_object_foreach(impact, key, v)
	{
		char sub[PATH_BYTES_MAX];

		path_join(sub, "consumer_impact", key);
		if (!json_is_string(v))
			return refuse(x, sub, "free text: write it in quotes if it holds ': ' or starts with a symbol");
	}
	return 0;
}

/* The lines of the seed's contract block, and the review drill's questions, as key paths: what a reviewer asks
 * for when it is blank. source_of_truth.system is required, so never blank; conflicts is left out (a read-only
 * target has none to resolve, and the default, version, is a choice). */
static const char *const review_lines[] = {
        "fields_owned",
        "fields_derived",
        "delivery.model",
        "delivery.ordering",
        "delivery.duplicates",
        "delivery.stale",
        "recovery.backfill_source",
        "recovery.replay_owner",
        "recovery.reconcile_every",
        "recovery.mismatch_threshold",
        "recovery.alert.stall_after",
        "recovery.alert.notify",
        "schema.versions",
        "deletes.mode",
        "deletes.retention",
        "consumer_impact.during_delay",
        "consumer_impact.during_drift",
        "consumer_impact.on_duplicate",
        "consumer_impact.on_delete",
        "consumer_impact.on_schema_change",
        "consumer_impact.rollout_pause",
};
_Static_assert(sizeof(review_lines) / sizeof(review_lines[0]) <= 32, "blank_lines is a 32-bit mask");

/* A dotted path of root given (present and not null; an empty list counts as given: "none" is an answer). */
static bool path_given(json_t *root, const char *path)
{
	char key[PATH_BYTES_MAX];
	json_t *v = root;

	while (v != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");

		if (!json_is_object(v) || n >= sizeof(key))
			return false;
		memcpy(key, path, n);
		key[n] = '\0';
		v = json_object_get(v, key);
		path += n + (path[n] == '.');
	}
	return v != NULL && !json_is_null(v);
}

static void blank_lines_note(struct sl_contract *c, json_t *root)
{
	for (size_t i = 0; i < sizeof(review_lines) / sizeof(review_lines[0]); i++)
		if (!path_given(root, review_lines[i]))
			c->blank_lines |= 1u << i;
}

size_t sl_contract_blank_lines(const struct sl_contract *c, const char **names, size_t names_max)
{
	size_t count = 0;

	for (size_t i = 0; i < sizeof(review_lines) / sizeof(review_lines[0]); i++) {
		if ((c->blank_lines & (1u << i)) == 0)
			continue;
		if (count < names_max)
			names[count] = review_lines[i];
		count++;
	}
	/* A thin event needs its source's API: where it is and how often to try it are blank lines of their own. */
	if (c->thin && c->fetch_url[0] == '\0') {
		if (count < names_max)
			names[count] = "delivery.fetch_url";
		count++;
	}
	if (c->thin && c->retry_limit == 0) {
		if (count < names_max)
			names[count] = "recovery.retry_limit";
		count++;
	}
	return count;
}

/* Check root, fill c, and set c->json to the stored form. */
static int contract_check(struct ctx *x, json_t *root, struct sl_contract *c)
{
	static const char *const keys[] = {
	        "source_of_truth", "fields_owned", "fields_derived", "delivery",        "conflicts",
	        "recovery",        "schema",       "deletes",        "consumer_impact", NULL};
	static const char *const sot_keys[] = {"system", NULL};
	json_t *sot, *sub, *norm = json_deep_copy(root);
	const char *system;
	int rc;

	if (norm == NULL)
		return -ENOMEM;
	c->mismatch_threshold = -1;
	rc = keys_check(x, root, "", keys);
	if (rc == 0 && (rc = object_get(x, root, "", "source_of_truth", &sot)) == 0 && sot == NULL)
		rc = refuse(x, "source_of_truth.system", "required: the system whose writes are the truth");
	if (rc == 0)
		rc = keys_check(x, sot, "source_of_truth", sot_keys);
	if (rc == 0 &&
	    (rc = string_get(x, sot, "source_of_truth", "system", SL_CONTRACT_NAME_BYTES_MAX, &system)) == 0) {
		if (system == NULL || !name_valid(system))
			rc = refuse(x, "source_of_truth.system",
			            "required: a system name of letters, digits, '_', '-' or '.' (billing, crm)");
		else
			snprintf(c->source_of_truth, sizeof(c->source_of_truth), "%s", system);
	}
	if (rc == 0)
		rc = ownership_check(x, c, root, norm);
	if (rc == 0 && (rc = object_get(x, root, "", "delivery", &sub)) == 0 && sub != NULL)
		rc = delivery_check(x, c, sub);
	if (rc == 0)
		rc = conflicts_check(x, c, root, norm);
	if (rc == 0 && (rc = object_get(x, root, "", "recovery", &sub)) == 0 && sub != NULL)
		rc = recovery_check(x, c, sub);
	if (rc == 0 && (rc = object_get(x, root, "", "schema", &sub)) == 0 && sub != NULL)
		rc = schema_check(x, c, sub);
	if (rc == 0 && (rc = object_get(x, root, "", "deletes", &sub)) == 0 && sub != NULL)
		rc = deletes_check(x, c, sub);
	if (rc == 0 && (rc = object_get(x, root, "", "consumer_impact", &sub)) == 0 && sub != NULL)
		rc = impact_check(x, sub);
	if (rc == 0)
		blank_lines_note(c, root);
	if (rc == 0) {
		c->json = json_dumps(norm, JSON_COMPACT | JSON_SORT_KEYS);
		if (c->json == NULL)
			rc = -ENOMEM;
	}
	json_decref(norm);
	return rc;
}

int sl_contract_parse(const char *text, size_t len, struct sl_contract **out, char *err, size_t err_bytes)
{
	struct ctx *x;
	struct sl_contract *c;
	json_t *root = NULL;
	size_t i;
	int rc;

	*out = NULL;
	if (len > SL_CONTRACT_TEXT_BYTES_MAX) {
		sl_error_set(err, err_bytes, "the contract is %zu bytes; at most %d are accepted", len,
		             SL_CONTRACT_TEXT_BYTES_MAX);
		return -E2BIG;
	}
	if (memchr(text, '\0', len) != NULL) {
		sl_error_set(err, err_bytes, "the contract holds a NUL byte: it must be text (YAML or JSON)");
		return -EINVAL;
	}
	x = calloc(1, sizeof(*x));
	c = calloc(1, sizeof(*c));
	if (x == NULL || c == NULL) {
		free(x);
		free(c);
		return -ENOMEM;
	}
	x->err = err;
	x->err_bytes = err_bytes;
	for (i = 0; i < len && strchr(" \t\r\n", text[i]) != NULL; i++)
		;
	if (i < len && text[i] == '{') {
		json_error_t jerr;

		root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		if (root == NULL) {
			sl_error_set(err, err_bytes, "line %d column %d: not JSON: %s", jerr.line, jerr.column,
			             jerr.text);
			rc = -EINVAL;
		} else {
			rc = 0;
		}
	} else {
		rc = yaml_load(x, text, len, &root);
	}
	if (rc == 0)
		rc = contract_check(x, root, c);
	json_decref(root);
	free(x);
	if (rc != 0) {
		if (rc == -ENOMEM)
			sl_error_set(err, err_bytes, "out of memory reading the contract");
		sl_contract_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void sl_contract_free(struct sl_contract *c)
{
	if (c == NULL)
		return;
	for (uint32_t i = 0; i < c->field_count; i++)
		free(c->fields[i]);
	free(c->fields);
	free(c->json);
	free(c);
}

const char *sl_contract_field_owner(const struct sl_contract *c, const char *field, size_t field_len)
{
	for (uint32_t i = 0; i < c->field_count; i++) {
		if (strlen(c->fields[i]) != field_len || memcmp(c->fields[i], field, field_len) != 0)
			continue;
		if (i >= c->derived_first)
			return NULL;
		for (uint32_t o = 0; o < c->owner_count; o++)
			if (i >= c->owners[o].field_first && i < c->owners[o].field_first + c->owners[o].field_count)
				return c->owners[o].system;
	}
	return c->source_of_truth;
}

bool sl_contract_has_ownership(const struct sl_contract *c)
{
	return c->field_count > 0;
}

bool sl_contract_schema_accepted(const struct sl_contract *c, int32_t v)
{
	if (c->schema_version_count == 0)
		return true;
	if (v == 0)
		v = 1;
	for (uint32_t i = 0; i < c->schema_version_count; i++)
		if (c->schema_versions[i] == v)
			return true;
	return false;
}
