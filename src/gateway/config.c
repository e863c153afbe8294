/*
 * config.c: the configuration file (PgBouncer-style "key = value" lines, # or ; comments,
 * optional quotes, [sections] ignored) and environment variables OUTREACH_GATEWAY_<KEY>
 * (upper case), which override the file so secrets can come from the service manager.
 * Every key is listed in one table below; docs/delivery.md documents each of them.
 */
#include "gateway.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { K_STR, K_INT, K_BOOL, K_LEVEL } KeyKind;
typedef struct Key {
	const char *name;
	KeyKind kind;
	size_t offset;
	const char *deflt;
	int min, max;
	const char *help;
} Key;

#define S(f) offsetof(Config, f)
static const Key keys[] = {
	{"conninfo", K_STR, S(conninfo), "", 0, 0, "libpq connection string; the role must be a member of outreach_sender"},
	{"worker", K_STR, S(worker), NULL, 0, 0, "unique worker name for leases (default: gateway-HOSTNAME)"},
	{"batch_size", K_INT, S(batch_size), "100", 1, 10000, "messages claimed per batch"},
	{"concurrency", K_INT, S(concurrency), "4", 1, 64, "SMTP connections used in parallel"},
	{"lease_seconds", K_INT, S(lease_seconds), "300", 2, 86400, "how long a claim lasts before another worker may take it"},
	{"max_attempts", K_INT, S(max_attempts), "8", 1, 100, "claims per message before it fails"},
	{"retry_base_seconds", K_INT, S(retry_base_seconds), "60", 1, 86400, "first retry delay after a temporary failure (doubles per attempt)"},
	{"retry_max_seconds", K_INT, S(retry_max_seconds), "3600", 1, 604800, "longest retry delay"},
	{"poll_seconds", K_INT, S(poll_seconds), "60", 1, 3600, "longest sleep between looks at the outbox without a notification"},
	{"report_every", K_INT, S(report_every), "20", 1, 10000, "results reported to PostgreSQL at least every N messages (the duplicate window after a crash)"},
	{"log_level", K_LEVEL, S(log_level), "info", 0, 0, "error, warning, info or debug"},
	{"smtp_url", K_STR, S(smtp_url), "smtp://127.0.0.1:25", 0, 0, "smtp://host:port (STARTTLS per smtp_starttls) or smtps://host:465"},
	{"smtp_username", K_STR, S(smtp_username), "", 0, 0, "SMTP AUTH user (empty: no AUTH)"},
	{"smtp_password", K_STR, S(smtp_password), "", 0, 0, "SMTP AUTH password (better: OUTREACH_GATEWAY_SMTP_PASSWORD)"},
	{"smtp_starttls", K_STR, S(smtp_starttls), "try", 0, 0, "off, try or require"},
	{"smtp_ca_file", K_STR, S(smtp_ca_file), "", 0, 0, "CA bundle to verify the SMTP server (default: the system's)"},
	{"smtp_timeout", K_INT, S(smtp_timeout), "30", 1, 600, "seconds per SMTP transaction"},
	{"from_address", K_STR, S(from_address), "", 0, 0, "envelope and From: address"},
	{"from_name", K_STR, S(from_name), "", 0, 0, "From: display name"},
	{"reply_to", K_STR, S(reply_to), "", 0, 0, "Reply-To: address (optional)"},
	{"sender_domain", K_STR, S(sender_domain), "", 0, 0, "domain of Message-IDs (default: from_address's)"},
	{"public_base_url", K_STR, S(public_base_url), "", 0, 0, "https:// base of the links in messages (the reverse proxy in front of http_listen)"},
	{"link_secret", K_STR, S(link_secret), "", 0, 0, "secret that signs links, at least 32 characters (better: OUTREACH_GATEWAY_LINK_SECRET)"},
	{"open_pixel", K_BOOL, S(open_pixel), "on", 0, 0, "add an open pixel to HTML email (templates can opt out)"},
	{"click_tracking", K_BOOL, S(click_tracking), "on", 0, 0, "rewrite links to signed click URLs (templates can opt out)"},
	{"dkim_selector", K_STR, S(dkim_selector), "", 0, 0, "DKIM selector (empty: no DKIM signature)"},
	{"dkim_key_file", K_STR, S(dkim_key_file), "", 0, 0, "PEM RSA private key for DKIM"},
	{"dkim_domain", K_STR, S(dkim_domain), "", 0, 0, "DKIM d= (default: sender_domain)"},
	{"sms_provider", K_STR, S(sms_provider), "none", 0, 0, "none, generic (JSON webhook) or twilio"},
	{"sms_url", K_STR, S(sms_url), "", 0, 0, "provider endpoint (twilio: https://api.twilio.com/2010-04-01/Accounts/SID/Messages.json)"},
	{"sms_token", K_STR, S(sms_token), "", 0, 0, "generic: bearer token; twilio: auth token"},
	{"sms_account", K_STR, S(sms_account), "", 0, 0, "twilio: account SID (basic auth user)"},
	{"sms_from", K_STR, S(sms_from), "", 0, 0, "sender number (E.164) or alphanumeric id"},
	{"sms_inbound_token", K_STR, S(sms_inbound_token), "", 0, 0, "shared secret the provider's inbound and receipt webhooks must carry (?key=)"},
	{"letters_dir", K_STR, S(letters_dir), "", 0, 0, "folder for print batch files (empty: letters wait for a gateway that has one)"},
	{"http_listen", K_STR, S(http_listen), "127.0.0.1:8025", 0, 0, "address:port of the HTTP endpoints (empty: none)"},
	{"pid_file", K_STR, S(pid_file), "", 0, 0, "write the process id here"},
	{"page_template", K_STR, S(page_template), "", 0, 0, "HTML file for the pages, with {{title}} and {{content}} (default: a plain built-in page)"},
	{"organization", K_STR, S(organization), "", 0, 0, "name shown on the pages"},
	{NULL, K_STR, 0, NULL, 0, 0, NULL}};
#undef S

static char *trim(char *s)
{
	while (isspace((unsigned char) *s)) s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1])) *--e = '\0';
	return s;
}

static const Key *find_key(const char *name)
{
	for (const Key *k = keys; k->name; k++)
		if (strcasecmp(k->name, name) == 0) return k;
	return NULL;
}

static bool set_value(Config *c, const Key *k, const char *v, char *err, size_t errlen, const char *where)
{
	void *field = (char *) c + k->offset;
	switch (k->kind) {
	case K_STR:
		free(*(char **) field);
		*(char **) field = xstrdup(v);
		return true;
	case K_INT: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno || end == v || *trim(end) || n < k->min || n > k->max) {
			snprintf(err, errlen, "%s: %s must be an integer between %d and %d, not \"%s\"", where, k->name, k->min, k->max, v);
			return false;
		}
		*(int *) field = (int) n;
		return true;
	}
	case K_BOOL:
		if (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1")) *(bool *) field = true;
		else if (!strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0")) *(bool *) field = false;
		else {
			snprintf(err, errlen, "%s: %s must be on or off, not \"%s\"", where, k->name, v);
			return false;
		}
		return true;
	case K_LEVEL: {
		int l = parse_log_level(v);
		if (l < 0) {
			snprintf(err, errlen, "%s: log_level must be error, warning, info or debug, not \"%s\"", where, v);
			return false;
		}
		*(int *) field = l;
		return true;
	}
	}
	return false;
}

void config_free(Config *c)
{
	if (!c) return;
	for (const Key *k = keys; k->name; k++)
		if (k->kind == K_STR) free(*(char **) ((char *) c + k->offset));
	free(c->path);
	free(c);
}

static bool is_empty(const char *s) { return !s || !*s; }

/* Checks what can be checked without connecting; returns false with err set. */
static bool validate(Config *c, char *err, size_t errlen)
{
	if (is_empty(c->conninfo)) { snprintf(err, errlen, "conninfo is not set"); return false; }
	if (is_empty(c->from_address) || !header_safe_address(c->from_address)) {
		snprintf(err, errlen, "from_address must be set to an email address (name@domain)"); return false;
	}
	if (!is_empty(c->reply_to) && !header_safe_address(c->reply_to)) { snprintf(err, errlen, "reply_to is not an email address"); return false; }
	for (const char *p = c->from_name; p && *p; p++)
		if (*p == '\r' || *p == '\n') { snprintf(err, errlen, "from_name must be one line"); return false; }
	if (is_empty(c->sender_domain)) { free(c->sender_domain); c->sender_domain = xstrdup(strchr(c->from_address, '@') + 1); }
	if (is_empty(c->dkim_domain)) { free(c->dkim_domain); c->dkim_domain = xstrdup(c->sender_domain); }
	if (strncmp(c->smtp_url, "smtp://", 7) && strncmp(c->smtp_url, "smtps://", 8)) {
		snprintf(err, errlen, "smtp_url must start with smtp:// or smtps://, not \"%s\"", c->smtp_url); return false;
	}
	if (strcmp(c->smtp_starttls, "off") && strcmp(c->smtp_starttls, "try") && strcmp(c->smtp_starttls, "require")) {
		snprintf(err, errlen, "smtp_starttls must be off, try or require"); return false;
	}
	if (strncmp(c->public_base_url, "https://", 8) && strncmp(c->public_base_url, "http://", 7)) {
		snprintf(err, errlen, "public_base_url must be an http(s):// URL (the address patients' links point to)"); return false;
	}
	size_t l = strlen(c->public_base_url);
	while (l > 0 && c->public_base_url[l - 1] == '/') c->public_base_url[--l] = '\0';
	if (strlen(c->link_secret) < 32) {
		snprintf(err, errlen, "link_secret must have at least 32 characters (e.g. openssl rand -hex 32)"); return false;
	}
	if (!is_empty(c->dkim_selector) && is_empty(c->dkim_key_file)) {
		snprintf(err, errlen, "dkim_selector is set but dkim_key_file is not"); return false;
	}
	if (strcmp(c->sms_provider, "none") && strcmp(c->sms_provider, "generic") && strcmp(c->sms_provider, "twilio")) {
		snprintf(err, errlen, "sms_provider must be none, generic or twilio, not \"%s\"", c->sms_provider); return false;
	}
	if (strcmp(c->sms_provider, "none") && (is_empty(c->sms_url) || is_empty(c->sms_from))) {
		snprintf(err, errlen, "sms_provider %s needs sms_url and sms_from", c->sms_provider); return false;
	}
	if (!strcmp(c->sms_provider, "twilio") && (is_empty(c->sms_account) || is_empty(c->sms_token))) {
		snprintf(err, errlen, "sms_provider twilio needs sms_account and sms_token"); return false;
	}
	if (c->retry_max_seconds < c->retry_base_seconds) {
		snprintf(err, errlen, "retry_max_seconds must not be below retry_base_seconds"); return false;
	}
	return true;
}

Config *config_load(const char *path, char *err, size_t errlen)
{
	Config *c = xmalloc(sizeof *c);
	memset(c, 0, sizeof *c);
	c->path = xstrdup(path);
	char where[512];
	for (const Key *k = keys; k->name; k++) {
		if (k->deflt && !set_value(c, k, k->deflt, err, errlen, "default")) goto fail;
		if (!k->deflt && k->kind == K_STR) *(char **) ((char *) c + k->offset) = xstrdup("");
	}
	if (path) {
		FILE *f = fopen(path, "r");
		if (!f) { snprintf(err, errlen, "could not open configuration file \"%s\": %s", path, strerror(errno)); goto fail; }
		char line[8192];
		int lineno = 0;
		while (fgets(line, sizeof line, f)) {
			lineno++;
			char *s = trim(line);
			if (!*s || *s == '#' || *s == ';' || *s == '[') continue;
			char *eq = strchr(s, '=');
			snprintf(where, sizeof where, "%s:%d", path, lineno);
			if (!eq) { snprintf(err, errlen, "%s: expected \"key = value\"", where); fclose(f); goto fail; }
			*eq = '\0';
			char *name = trim(s), *val = trim(eq + 1);
			size_t vl = strlen(val);
			if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) { val[vl - 1] = '\0'; val++; }
			const Key *k = find_key(name);
			if (!k) { snprintf(err, errlen, "%s: unknown setting \"%s\" (see outreach-gateway --help-config)", where, name); fclose(f); goto fail; }
			if (!set_value(c, k, val, err, errlen, where)) { fclose(f); goto fail; }
		}
		fclose(f);
	}
	for (const Key *k = keys; k->name; k++) {
		char env[128] = "OUTREACH_GATEWAY_";
		size_t p = strlen(env);
		for (const char *q = k->name; *q && p < sizeof env - 1; q++) env[p++] = (char) toupper((unsigned char) *q);
		env[p] = '\0';
		const char *v = getenv(env);
		if (v) {
			snprintf(where, sizeof where, "environment %s", env);
			if (!set_value(c, k, v, err, errlen, where)) goto fail;
		}
	}
	if (is_empty(c->worker)) {
		char host[256] = "localhost";
		gethostname(host, sizeof host - 1);
		free(c->worker);
		size_t n = strlen(host) + 16;
		c->worker = xmalloc(n);
		snprintf(c->worker, n, "gateway-%s", host);
	}
	if (!validate(c, err, errlen)) goto fail;
	return c;
fail:
	config_free(c);
	return NULL;
}

void config_print_reference(void)
{
	printf("Settings (file \"key = value\", or environment OUTREACH_GATEWAY_KEY):\n");
	for (const Key *k = keys; k->name; k++)
		printf("  %-20s %s%s%s%s\n", k->name, k->help, k->deflt && *k->deflt ? " [" : "", k->deflt && *k->deflt ? k->deflt : "",
		       k->deflt && *k->deflt ? "]" : "");
}
