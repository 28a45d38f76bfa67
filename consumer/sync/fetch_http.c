/* Thin events fetched over HTTP with libcurl (fetch_http.h). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/fetch_http.h"

#define TIMEOUT_MS_DEFAULT     10000
#define BODY_BYTES_MAX_DEFAULT (8u << 20)
/* A URL with its key: the template and a key of 1 KiB percent-encoded three times over, with room. */
#define URL_BYTES_MAX          8192

struct sl_fetch_http {
	CURL *curl;
	char *url_template;
	size_t body_bytes_max;
	char *body;
	size_t body_len;
	size_t body_cap;
	bool too_large;
	char url[URL_BYTES_MAX];
	char curl_error[CURL_ERROR_SIZE];
};

static size_t body_cb(char *data, size_t size, size_t count, void *cb_arg)
{
	struct sl_fetch_http *f = cb_arg;
	size_t n = size * count;

	if (f->body_len + n > f->body_bytes_max) {
		f->too_large = true;
		return 0; /* curl stops the transfer */
	}
	if (f->body_len + n + 1 > f->body_cap) {
		size_t cap = f->body_cap ? f->body_cap : 4096;
		char *p;

		while (cap < f->body_len + n + 1)
			cap *= 2;
		p = realloc(f->body, cap);
		if (p == NULL)
			return 0;
		f->body = p;
		f->body_cap = cap;
	}
	memcpy(f->body + f->body_len, data, n);
	f->body_len += n;
	return n;
}

int sl_fetch_http_new(struct sl_fetch_http **out, const struct sl_fetch_http_options *o, char *err, size_t err_bytes)
{
	struct sl_fetch_http *f;
	static bool curl_ready;

	*out = NULL;
	if (o->url_template == NULL || strstr(o->url_template, "{key}") == NULL ||
	    (strncmp(o->url_template, "http://", 7) != 0 && strncmp(o->url_template, "https://", 8) != 0)) {
		sl_error_set(err, err_bytes, "fetch URL '%s': use http:// or https:// with {key} where the key goes",
		             o->url_template != NULL ? o->url_template : "");
		return -EINVAL;
	}
	if (strlen(o->url_template) > URL_BYTES_MAX / 2) {
		sl_error_set(err, err_bytes, "fetch URL longer than %d characters", URL_BYTES_MAX / 2);
		return -EINVAL;
	}
	/* Not thread-safe, and once per process: the applier creates one fetcher, on its only thread. */
	if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		sl_error_set(err, err_bytes, "libcurl failed to start");
		return -ENOMEM;
	}
	curl_ready = true;
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->url_template = strdup(o->url_template)) == NULL || (f->curl = curl_easy_init()) == NULL) {
		if (f != NULL)
			free(f->url_template);
		free(f);
		sl_error_set(err, err_bytes, "out of memory for the HTTP fetcher");
		return -ENOMEM;
	}
	f->body_bytes_max = o->body_bytes_max ? o->body_bytes_max : BODY_BYTES_MAX_DEFAULT;
	curl_easy_setopt(f->curl, CURLOPT_TIMEOUT_MS, (long)(o->timeout_ms ? o->timeout_ms : TIMEOUT_MS_DEFAULT));
	curl_easy_setopt(f->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(f->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->curl, CURLOPT_ERRORBUFFER, f->curl_error);
	curl_easy_setopt(f->curl, CURLOPT_USERAGENT, "synclog-apply");
	*out = f;
	return 0;
}

void sl_fetch_http_free(struct sl_fetch_http *f)
{
	if (f == NULL)
		return;
	curl_easy_cleanup(f->curl);
	free(f->url_template);
	free(f->body);
	free(f);
}

/* The template with each {key} replaced by key, percent-encoded. 0 or -ENAMETOOLONG. */
static int url_build(struct sl_fetch_http *f, const uint8_t *key, size_t key_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t at = 0;

	for (const char *t = f->url_template; *t != '\0';) {
		if (strncmp(t, "{key}", 5) == 0) {
			for (size_t i = 0; i < key_len; i++) {
				uint8_t c = key[i];
				bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				             (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';

				if (at + 4 > sizeof(f->url))
					return -ENAMETOOLONG;
				if (plain) {
					f->url[at++] = (char)c;
				} else {
					f->url[at++] = '%';
					f->url[at++] = hex[c >> 4];
					f->url[at++] = hex[c & 15];
				}
			}
			t += 5;
			continue;
		}
		if (at + 2 > sizeof(f->url))
			return -ENAMETOOLONG;
		f->url[at++] = *t++;
	}
	f->url[at] = '\0';
	return 0;
}

int sl_fetch_http_cb(const struct sl_apply_record *r, const uint8_t **out, size_t *out_len, char *why, size_t why_bytes,
                     void *cb_arg)
{
	struct sl_fetch_http *f = cb_arg;
	long status = 0;
	CURLcode rc;

	if (url_build(f, r->rec.key, (size_t)r->rec.key_len) != 0) {
		snprintf(why, why_bytes, "the key makes a URL longer than %d bytes", URL_BYTES_MAX);
		return -EBADMSG;
	}
	f->body_len = 0;
	f->too_large = false;
	f->curl_error[0] = '\0';
	curl_easy_setopt(f->curl, CURLOPT_URL, f->url);
	rc = curl_easy_perform(f->curl);
	if (f->too_large) {
		snprintf(why, why_bytes, "GET %s: the entity is larger than %zu bytes", f->url, f->body_bytes_max);
		return -EBADMSG;
	}
	if (rc != CURLE_OK) {
		/* No connection, a reset, a timeout: the source is down or overloaded; it may come back. */
		snprintf(why, why_bytes, "GET %s: %s", f->url,
		         f->curl_error[0] != '\0' ? f->curl_error : curl_easy_strerror(rc));
		return -EAGAIN;
	}
	curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200) {
		/* An empty body is an empty value: the target refuses it if it stores JSON. */
		*out = (const uint8_t *)(f->body != NULL ? f->body : "");
		*out_len = f->body_len;
		return 0;
	}
	snprintf(why, why_bytes, "GET %s: HTTP %ld", f->url, status);
	if (status == 404 || status == 410)
		return -ENOENT;
	if (status == 408 || status == 425 || status == 429 || status >= 500)
		return -EAGAIN;
	return -EBADMSG;
}
