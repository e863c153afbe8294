/*
 * util.c: growable strings, logging with levels, and the encodings the gateway needs
 * (HTML escaping, percent-encoding, base64, JSON strings, quoted-printable).
 */
#include "gateway.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

int log_level = LOG_INFO;

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) { fprintf(stderr, "out of memory\n"); abort(); }
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) { fprintf(stderr, "out of memory\n"); abort(); }
	return p;
}

char *xstrdup(const char *s) { return s ? xstrndup(s, strlen(s)) : NULL; }

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void sb_init(StrBuf *b) { b->data = NULL; b->len = b->cap = 0; }
void sb_free(StrBuf *b) { free(b->data); sb_init(b); }
void sb_reset(StrBuf *b) { b->len = 0; if (b->data) b->data[0] = '\0'; }

static void sb_grow(StrBuf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap) return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1) cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void sb_append(StrBuf *b, const char *s, size_t n)
{
	sb_grow(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void sb_puts(StrBuf *b, const char *s) { sb_append(b, s, strlen(s)); }

void sb_printf(StrBuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	sb_grow(b, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

static const char *const level_names[] = {"ERROR", "WARNING", "INFO", "DEBUG"};

int parse_log_level(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0) return i;
	if (strcasecmp(s, "warn") == 0) return LOG_WARNING;
	return -1;
}

/* One line per event on stderr (journald adds its own time stamp; ours is for files). */
void gw_log(int level, const char *fmt, ...)
{
	if (level > log_level) return;
	char ts[32];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03d UTC [%d] %s %s\n", ts, (int) (tv.tv_usec / 1000), (int) getpid(), level_names[level], line);
	fflush(stderr);
}

double now_seconds(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double) tv.tv_sec + tv.tv_usec / 1e6;
}

void html_escape(StrBuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case '&': sb_puts(b, "&amp;"); break;
		case '<': sb_puts(b, "&lt;"); break;
		case '>': sb_puts(b, "&gt;"); break;
		case '"': sb_puts(b, "&quot;"); break;
		case '\'': sb_puts(b, "&#39;"); break;
		default: sb_append(b, s + i, 1);
		}
	}
}

static void utf8_put(StrBuf *b, unsigned long cp)
{
	char u[4];
	if (cp == 0 || cp > 0x10FFFF) return;
	if (cp < 0x80) { u[0] = (char) cp; sb_append(b, u, 1); }
	else if (cp < 0x800) { u[0] = (char) (0xC0 | (cp >> 6)); u[1] = (char) (0x80 | (cp & 0x3F)); sb_append(b, u, 2); }
	else if (cp < 0x10000) { u[0] = (char) (0xE0 | (cp >> 12)); u[1] = (char) (0x80 | ((cp >> 6) & 0x3F)); u[2] = (char) (0x80 | (cp & 0x3F)); sb_append(b, u, 3); }
	else { u[0] = (char) (0xF0 | (cp >> 18)); u[1] = (char) (0x80 | ((cp >> 12) & 0x3F)); u[2] = (char) (0x80 | ((cp >> 6) & 0x3F)); u[3] = (char) (0x80 | (cp & 0x3F)); sb_append(b, u, 4); }
}

/* The entities our renderer writes plus numeric ones and &nbsp;. */
void html_unescape(StrBuf *b, const char *s, size_t n)
{
	static const struct { const char *name; const char *text; } ents[] = {
		{"amp;", "&"}, {"lt;", "<"}, {"gt;", ">"}, {"quot;", "\""}, {"apos;", "'"}, {"nbsp;", " "}, {NULL, NULL}};
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '&') {
			bool done = false;
			for (int e = 0; ents[e].name; e++) {
				size_t l = strlen(ents[e].name);
				if (i + 1 + l <= n && strncmp(s + i + 1, ents[e].name, l) == 0) {
					sb_puts(b, ents[e].text);
					i += l;
					done = true;
					break;
				}
			}
			if (!done && i + 2 < n && s[i + 1] == '#') {
				size_t j = i + 2;
				int base = 10;
				if (j < n && (s[j] == 'x' || s[j] == 'X')) { base = 16; j++; }
				unsigned long cp = 0;
				size_t k = j;
				while (k < n && k < j + 8 && isxdigit((unsigned char) s[k]) && (base == 16 || isdigit((unsigned char) s[k])))
					cp = cp * (unsigned long) base + (unsigned long) (isdigit((unsigned char) s[k]) ? s[k] - '0' : (tolower((unsigned char) s[k]) - 'a' + 10)), k++;
				if (k > j && k < n && s[k] == ';') {
					utf8_put(b, cp);
					i = k;
					done = true;
				}
			}
			if (done) continue;
		}
		sb_append(b, s + i, 1);
	}
}

void url_encode(StrBuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') sb_append(b, (const char *) p, 1);
		else { char e[3] = {'%', hex[*p >> 4], hex[*p & 15]}; sb_append(b, e, 3); }
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

char *url_decode(const char *s, size_t n)
{
	StrBuf b;
	sb_init(&b);
	sb_append(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') sb_append(&b, " ", 1);
		else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			char c = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			if (c == '\0') c = ' ';
			sb_append(&b, &c, 1);
			i += 2;
		} else sb_append(&b, s + i, 1);
	}
	return b.data;
}

char *form_value(const char *body, const char *key)
{
	if (!body) return NULL;
	size_t kl = strlen(key);
	const char *p = body;
	while (*p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t) (end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t nl = eq ? (size_t) (eq - p) : len;
		char *name = url_decode(p, nl);
		bool match = strlen(name) == kl && memcmp(name, key, kl) == 0;
		free(name);
		if (match) return eq ? url_decode(eq + 1, len - nl - 1) : xstrdup("");
		if (!end) break;
		p = end + 1;
	}
	return NULL;
}

void base64_encode(StrBuf *b, const unsigned char *s, size_t n, bool url)
{
	const char *tab = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	                      : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned) s[i] << 16 | (i + 1 < n ? (unsigned) s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
		char o[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
		size_t keep = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
		sb_append(b, o, keep);
		if (!url) for (size_t k = keep; k < 4; k++) sb_append(b, "=", 1);
	}
}

void json_string(StrBuf *b, const char *s)
{
	sb_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\') { sb_append(b, "\\", 1); sb_append(b, (const char *) p, 1); }
		else if (*p < 0x20) sb_printf(b, "\\u%04x", *p);
		else sb_append(b, (const char *) p, 1);
	}
	sb_append(b, "\"", 1);
}

/* Quoted-printable (RFC 2045) with CRLF line ends; soft breaks keep lines under 76. */
void qp_encode(StrBuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	int col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) s[i];
		if (c == '\r') continue;
		if (c == '\n') {
			sb_append(b, "\r\n", 2);
			col = 0;
			continue;
		}
		char enc[3];
		int len;
		bool at_eol = (i + 1 == n || s[i + 1] == '\n' || s[i + 1] == '\r');
		if ((c >= 33 && c <= 126 && c != '=' && !(c == '.' && col == 0)) || ((c == ' ' || c == '\t') && !at_eol)) {
			enc[0] = (char) c; len = 1;
		} else {
			enc[0] = '='; enc[1] = hex[c >> 4]; enc[2] = hex[c & 15]; len = 3;
		}
		if (col + len > 75) { sb_append(b, "=\r\n", 3); col = 0; }
		sb_append(b, enc, (size_t) len);
		col += len;
	}
	sb_append(b, "\r\n", 2);
}
