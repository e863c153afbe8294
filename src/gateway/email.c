/*
 * email.c: turns an outbox row into an RFC 5322 message.  multipart/alternative (the
 * plain text derived from the HTML when the template is HTML), quoted-printable bodies,
 * RFC 2047 encoded subjects and names, Message-ID derived from the message id (a re-send
 * after a crash carries the same id, so receivers can drop the duplicate), List-Unsubscribe
 * with RFC 8058 one-click.  Patient data never reaches a header unencoded: control
 * characters (CR and LF included) become spaces and non-ASCII text is encoded, so no value
 * can start a header of its own.  Links in HTML bodies become signed click URLs, the
 * placeholder unsubscribe and confirmation URLs become signed public ones, and an open
 * pixel is added (both per template switchable).  Attachments (an event's invite.ics) make
 * it multipart/mixed: the body as above, then one base64 part per file.
 */
#include "gateway.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIRM_PLACEHOLDER "https://outreach.invalid/confirm?token="
#define EVENT_PLACEHOLDER "https://outreach.invalid/event-registration?event="

bool header_safe_address(const char *a)
{
	if (!a || !*a || strlen(a) > 254) return false;
	const char *at = strchr(a, '@');
	if (!at || at == a || !at[1] || strchr(at + 1, '@')) return false;
	for (const unsigned char *p = (const unsigned char *) a; *p; p++)
		if (*p <= ' ' || *p >= 127 || strchr("<>()[],;:\"\\", *p)) return false;
	return true;
}

/* One line of printable text: control characters become spaces. */
static char *one_line(const char *s)
{
	char *o = xstrdup(s ? s : "");
	for (unsigned char *p = (unsigned char *) o; *p; p++)
		if (*p < ' ' || *p == 127) *p = ' ';
	return o;
}

static bool needs_encoding(const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p >= 127) return true;
	return strlen(s) > 60;
}

/* RFC 2047 B-encoded words of at most 45 bytes of UTF-8 each (never splitting a character),
 * folded onto continuation lines.  header_len: characters already on the first line. */
void rfc2047_encode(StrBuf *b, const char *s, size_t header_len)
{
	char *clean = one_line(s);
	size_t n = strlen(clean), i = 0;
	bool first = true;
	(void) header_len;
	while (i < n) {
		size_t take = n - i > 45 ? 45 : n - i;
		while (take > 0 && i + take < n && (((unsigned char) clean[i + take]) & 0xC0) == 0x80) take--;
		if (!first) sb_puts(b, "\r\n ");
		sb_puts(b, "=?UTF-8?B?");
		base64_encode(b, (const unsigned char *) clean + i, take, false);
		sb_puts(b, "?=");
		i += take;
		first = false;
	}
	free(clean);
}

static void header_text(StrBuf *b, const char *s)
{
	char *clean = one_line(s);
	if (needs_encoding(clean)) rfc2047_encode(b, clean, 0);
	else sb_puts(b, clean);
	free(clean);
}

static void header_mailbox(StrBuf *b, const char *name, const char *addr)
{
	char *clean = one_line(name);
	if (*clean) {
		if (needs_encoding(clean)) rfc2047_encode(b, clean, 0);
		else {
			sb_append(b, "\"", 1);
			for (const char *p = clean; *p; p++) {
				if (*p == '"' || *p == '\\') sb_append(b, "\\", 1);
				sb_append(b, p, 1);
			}
			sb_append(b, "\"", 1);
		}
		sb_append(b, " ", 1);
	}
	free(clean);
	sb_printf(b, "<%s>", addr);
}

static void replace_all(StrBuf *out, const char *s, const char *find, const char *with)
{
	size_t fl = strlen(find);
	const char *p = s, *q;
	while (fl && (q = strstr(p, find))) {
		sb_append(out, p, (size_t) (q - p));
		sb_puts(out, with);
		p = q + fl;
	}
	sb_puts(out, p);
}

static void signed_url(StrBuf *b, const Config *cfg, const char *path, const char *purpose, long long id, const char *extra)
{
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", id);
	sb_printf(b, "%s/%s/", cfg->public_base_url, path);
	sign_token(b, cfg->link_secret, purpose, ids, extra);
}

/* Placeholder confirmation links (85_delivery.sql) become signed public ones. */
static void rewrite_confirm(StrBuf *out, const Config *cfg, const char *s)
{
	const char *p = s, *q;
	size_t pl = strlen(CONFIRM_PLACEHOLDER);
	while ((q = strstr(p, CONFIRM_PLACEHOLDER))) {
		sb_append(out, p, (size_t) (q - p));
		const char *t = q + pl, *e = t;
		while (isalnum((unsigned char) *e)) e++;
		char *tok = xstrndup(t, (size_t) (e - t));
		sb_printf(out, "%s/confirm/", cfg->public_base_url);
		sign_token(out, cfg->link_secret, "confirm", tok, NULL);
		free(tok);
		p = e;
	}
	sb_puts(out, p);
}

/* Placeholder event registration links ({{event.registration_url}}, 64_events.sql) become
 * signed public ones for the event and this message's contact: public_base_url/e/EVENTxCONTACT.SIG. */
static void rewrite_event(StrBuf *out, const Config *cfg, const char *s, long long contact_id)
{
	const char *p = s, *q;
	size_t pl = strlen(EVENT_PLACEHOLDER);
	while ((q = strstr(p, EVENT_PLACEHOLDER))) {
		sb_append(out, p, (size_t) (q - p));
		const char *t = q + pl, *e = t;
		while (isdigit((unsigned char) *e)) e++;
		if (e == t || e - t > 18) { sb_append(out, q, pl); p = t; continue; }
		char ids[64];
		snprintf(ids, sizeof ids, "%.*sx%lld", (int) (e - t), t, contact_id);
		sb_printf(out, "%s/e/", cfg->public_base_url);
		sign_token(out, cfg->link_secret, "event", ids, NULL);
		p = e;
	}
	sb_puts(out, p);
}

/* href="..." / href='...' values that are http(s) links outside our own base URL become
 * signed click URLs carrying the original (HTML-unescaped) URL. */
static void rewrite_links(StrBuf *out, const Config *cfg, long long id, const char *html)
{
	const char *p = html;
	size_t base_len = strlen(cfg->public_base_url);
	while (*p) {
		const char *h = strcasestr(p, "href");
		if (!h) break;
		const char *v = h + 4;
		while (isspace((unsigned char) *v)) v++;
		if (*v != '=') { sb_append(out, p, (size_t) (v - p)); p = v; continue; }
		v++;
		while (isspace((unsigned char) *v)) v++;
		char quote = *v;
		if (quote != '"' && quote != '\'') { sb_append(out, p, (size_t) (v - p)); p = v; continue; }
		const char *start = v + 1, *end = strchr(start, quote);
		if (!end) break;
		StrBuf url;
		sb_init(&url);
		sb_append(&url, "", 0);
		html_unescape(&url, start, (size_t) (end - start));
		sb_append(out, p, (size_t) (start - p));
		if ((strncasecmp(url.data, "http://", 7) == 0 || strncasecmp(url.data, "https://", 8) == 0)
		    && strncmp(url.data, cfg->public_base_url, base_len) != 0) {
			signed_url(out, cfg, "c", "click", id, url.data);
			sb_puts(out, "?u=");
			url_encode(out, url.data);
		} else sb_append(out, start, (size_t) (end - start));
		sb_free(&url);
		p = end;
	}
	sb_puts(out, p);
}

static void add_pixel(StrBuf *out, const Config *cfg, long long id, const char *html)
{
	StrBuf img;
	sb_init(&img);
	sb_puts(&img, "<img src=\"");
	signed_url(&img, cfg, "o", "open", id, NULL);
	sb_puts(&img, ".gif\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">");
	const char *body_end = strcasestr(html, "</body>");
	if (body_end) {
		sb_append(out, html, (size_t) (body_end - html));
		sb_puts(out, img.data);
		sb_puts(out, body_end);
	} else {
		sb_puts(out, html);
		sb_puts(out, img.data);
	}
	sb_free(&img);
}

static bool tag_is(const char *t, size_t len, const char *name)
{
	size_t nl = strlen(name);
	return len >= nl && strncasecmp(t, name, nl) == 0 && (len == nl || !isalnum((unsigned char) t[nl]));
}

/* Readable plain text from HTML: paragraphs and line breaks kept, links as "text (url)",
 * style and script dropped, entities decoded, white space collapsed. */
void html_to_text(StrBuf *b, const char *html)
{
	StrBuf raw;
	sb_init(&raw);
	sb_append(&raw, "", 0);
	char *href = NULL;
	const char *p = html;
	while (*p) {
		if (*p == '<') {
			const char *e = strchr(p, '>');
			if (!e) break;
			const char *t = p + 1;
			size_t len = (size_t) (e - t);
			bool close = len && *t == '/';
			const char *name = close ? t + 1 : t;
			size_t nlen = close ? len - 1 : len;
			if (!close && (tag_is(name, nlen, "style") || tag_is(name, nlen, "script") || tag_is(name, nlen, "head") || tag_is(name, nlen, "title"))) {
				char endtag[16];
				snprintf(endtag, sizeof endtag, "</%.*s", (int) (strcspn(name, " \t\r\n>")), name);
				const char *c = strcasestr(e, endtag);
				p = c ? strchr(c, '>') : NULL;
				p = p ? p + 1 : e + 1;
				continue;
			}
			if (tag_is(name, nlen, "br")) sb_puts(&raw, "\x02");
			else if (tag_is(name, nlen, "p") || tag_is(name, nlen, "div") || tag_is(name, nlen, "tr") || tag_is(name, nlen, "table")
			         || (nlen >= 2 && tolower((unsigned char) name[0]) == 'h' && isdigit((unsigned char) name[1])))
				sb_puts(&raw, "\x02\x02");
			else if (tag_is(name, nlen, "li")) sb_puts(&raw, close ? "\x02" : "\x02- ");
			else if (tag_is(name, nlen, "a") && !close) {
				const char *h = strcasestr(name, "href");
				free(href);
				href = NULL;
				if (h && h < e) {
					const char *q = strpbrk(h, "\"'");
					if (q && q < e) {
						const char *qe = strchr(q + 1, *q);
						if (qe) { StrBuf u; sb_init(&u); sb_append(&u, "", 0); html_unescape(&u, q + 1, (size_t) (qe - q - 1)); href = u.data; }
					}
				}
				sb_puts(&raw, "\x01");     /* marks where the link text starts */
			} else if (tag_is(name, nlen, "a") && close && href) {
				char *mark = strrchr(raw.data, '\x01');
				if (mark) {
					StrBuf txt; sb_init(&txt); sb_append(&txt, "", 0);
					html_unescape(&txt, mark + 1, strlen(mark + 1));
					bool same = strcmp(txt.data, href) == 0;
					sb_free(&txt);
					memmove(mark, mark + 1, strlen(mark + 1) + 1);
					raw.len--;
					if (!same) sb_printf(&raw, " (%s)", href);
				}
				free(href);
				href = NULL;
			}
			p = e + 1;
			continue;
		}
		sb_append(&raw, isspace((unsigned char) *p) ? " " : p, 1);
		p++;
	}
	free(href);
	for (char *m; (m = strchr(raw.data, '\x01'));) { memmove(m, m + 1, strlen(m + 1) + 1); raw.len--; }
	StrBuf dec;
	sb_init(&dec);
	sb_append(&dec, "", 0);
	/* source white space collapses; the \n we emitted are kept (entities decoded after) */
	int newlines = 0;
	bool space = false, start = true;
	for (const char *q = raw.data; *q; q++) {
		if (*q == '\x02') { newlines++; space = false; continue; }
		if (isspace((unsigned char) *q)) { space = true; continue; }
		if (newlines && !start) sb_puts(&dec, newlines > 1 ? "\n\n" : "\n");
		else if (space && !start) sb_puts(&dec, " ");
		newlines = 0;
		space = false;
		start = false;
		sb_append(&dec, q, 1);
	}
	/* markers at line starts were spaces after a newline: nothing else to trim */
	html_unescape(b, dec.data, dec.len);
	sb_puts(b, "\n");
	sb_free(&dec);
	sb_free(&raw);
}

/* The attachments gateway_claim packed (85_delivery.sql): items joined by \x1e, each
 * filename \x1f content type \x1f base64 content in lines ending in \n.  Each becomes a
 * base64 part after the body: the content type as the database gives it (an event's
 * "text/calendar; charset=utf-8; method=REQUEST"), a name= parameter and
 * Content-Disposition: attachment with the file name.  The file name is reduced to
 * printable ASCII without quotes or backslashes (anything else becomes '_'), the content
 * type must look like type/subtype[; parameters] in printable ASCII or it is sent as
 * application/octet-stream: neither can carry a header of its own. */
static void add_attachments(StrBuf *out, const char *boundary, const char *packed)
{
	const char *p = packed;
	while (p && *p) {
		const char *end = strchr(p, '\x1e');
		size_t len = end ? (size_t) (end - p) : strlen(p);
		const char *s1 = memchr(p, '\x1f', len);
		const char *s2 = s1 ? memchr(s1 + 1, '\x1f', len - (size_t) (s1 + 1 - p)) : NULL;
		if (s1 && s2) {
			char *name = xstrndup(p, (size_t) (s1 - p));
			char *type = xstrndup(s1 + 1, (size_t) (s2 - s1 - 1));
			for (unsigned char *c = (unsigned char *) name; *c; c++)
				if (*c < ' ' || *c >= 127 || *c == '"' || *c == '\\') *c = '_';
			bool type_ok = strchr(type, '/') != NULL && *type != '/';
			for (const unsigned char *c = (const unsigned char *) type; *c && type_ok; c++)
				if (*c < ' ' || *c >= 127) type_ok = false;
			sb_printf(out, "\r\n--%s\r\nContent-Type: %s; name=\"%s\"\r\n"
			          "Content-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
			          boundary, type_ok ? type : "application/octet-stream", *name ? name : "attachment", *name ? name : "attachment");
			/* base64 lines: \n (PostgreSQL's encode) becomes CRLF */
			for (const char *c = s2 + 1; c < p + len; c++) {
				if (*c == '\n') sb_puts(out, "\r\n");
				else if (*c != '\r') sb_append(out, c, 1);
			}
			free(name);
			free(type);
		}
		p = end ? end + 1 : NULL;
	}
}

bool email_build(StrBuf *out, const Config *cfg, const Message *m, char *err, size_t errlen)
{
	if (!header_safe_address(m->address)) {
		snprintf(err, errlen, "invalid recipient address");
		return false;
	}
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", m->id);
	StrBuf unsub, body1, body2, body3, text;
	sb_init(&unsub); sb_init(&body1); sb_init(&body2); sb_init(&body3); sb_init(&text);
	signed_url(&unsub, cfg, "u", "unsubscribe", m->id, NULL);
	const char *body = m->body ? m->body : "";
	if (m->unsubscribe_url && *m->unsubscribe_url) replace_all(&body1, body, m->unsubscribe_url, unsub.data);
	else sb_puts(&body1, body);
	rewrite_confirm(&body2, cfg, body1.data);
	sb_reset(&body1);
	rewrite_event(&body1, cfg, body2.data ? body2.data : "", m->contact_id);
	const char *final = body1.data ? body1.data : "";
	if (m->html) {
		if (cfg->click_tracking && m->click_tracking) { rewrite_links(&body3, cfg, m->id, final); final = body3.data; }
		html_to_text(&text, final);
		if (cfg->open_pixel && m->open_pixel) {
			sb_reset(&body2);                       /* body2 is no longer read: final is body1 or body3 */
			add_pixel(&body2, cfg, m->id, final);
			final = body2.data;
		}
	}

	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	sb_printf(out, "Date: %s\r\nFrom: ", date);
	header_mailbox(out, cfg->from_name, cfg->from_address);
	sb_puts(out, "\r\nTo: ");
	header_mailbox(out, m->contact_name, m->address);
	sb_puts(out, "\r\n");
	if (cfg->reply_to && *cfg->reply_to) sb_printf(out, "Reply-To: <%s>\r\n", cfg->reply_to);
	sb_puts(out, "Subject: ");
	header_text(out, m->subject ? m->subject : "");
	sb_printf(out, "\r\nMessage-ID: <outreach.%s@%s>\r\nMIME-Version: 1.0\r\n", ids, cfg->sender_domain);
	if (strcmp(m->message_class, "marketing") == 0) {
		sb_printf(out, "List-Unsubscribe: <%s>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", unsub.data);
		if (m->list_name) { sb_puts(out, "List-Id: "); header_text(out, m->list_name); sb_printf(out, " <list.%s>\r\n", cfg->sender_domain); }
	}
	sb_printf(out, "X-Outreach-Message: %s\r\n", ids);
	char mixed[80];
	snprintf(mixed, sizeof mixed, "=_outreach_mixed_%s_%lx", ids, (unsigned long) now);
	bool attach = m->attachments && *m->attachments;
	if (attach) {
		sb_printf(out, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", mixed);
		sb_puts(out, "This is a multi-part message in MIME format.\r\n");
		sb_printf(out, "\r\n--%s\r\n", mixed);
	}
	if (m->html) {
		char boundary[64];
		snprintf(boundary, sizeof boundary, "=_outreach_%s_%lx", ids, (unsigned long) now);
		sb_printf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary);
		if (!attach) sb_puts(out, "This is a multi-part message in MIME format.\r\n");
		sb_printf(out, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary);
		qp_encode(out, text.data, text.len);
		sb_printf(out, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary);
		qp_encode(out, final, strlen(final));
		sb_printf(out, "\r\n--%s--\r\n", boundary);
	} else {
		sb_puts(out, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
		qp_encode(out, final, strlen(final));
	}
	if (attach) {
		add_attachments(out, mixed, m->attachments);
		sb_printf(out, "\r\n--%s--\r\n", mixed);
	}
	sb_free(&unsub); sb_free(&body1); sb_free(&body2); sb_free(&body3); sb_free(&text);
	return true;
}
