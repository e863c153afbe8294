/*
 * http.c: the gateway's HTTP endpoints (libmicrohttpd, one internal thread, its own
 * PostgreSQL connection; listen on loopback and put a TLS reverse proxy in front).
 *
 *   GET  /o/TOKEN.gif          open pixel                GET  /c/TOKEN?u=URL   click redirect
 *   GET  /u/TOKEN              unsubscribe page          POST /u/TOKEN         unsubscribe (form or RFC 8058 one-click)
 *   GET  /p/TOKEN              preference centre         POST /p/TOKEN         save preferences
 *   GET  /confirm/TOKEN        double opt-in page        POST /confirm/TOKEN   confirm the subscription
 *   GET  /e/TOKEN              event registration page   POST /e/TOKEN         register (outreach.register)
 *   POST /sms/inbound?key=K    inbound SMS keywords      POST /sms/receipt/TOKEN  SMS delivery receipt
 *   GET  /healthz              liveness and database     GET  /metrics         Prometheus text format
 *
 * A token that does not verify (sign.c) gets a plain 4xx page and nothing is changed; the
 * database checks again what the token cannot (a click goes only to a URL of that message).
 * GET requests never change consent (mail scanners follow links); POST does.
 */
#include "gateway.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static struct MHD_Daemon *daemon_;
static PGconn *hconn;
static const Config *cfg;      /* valid while a request holds config_lock */

typedef struct Req { StrBuf body; bool too_big; } Req;

static const unsigned char pixel_gif[] = {
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

static void count(unsigned long *c)
{
	pthread_mutex_lock(&metrics_lock);
	(*c)++;
	pthread_mutex_unlock(&metrics_lock);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type, const void *data, size_t len,
                               const char *location)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *) data, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (location) MHD_add_response_header(r, "Location", location);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) return NULL;
	StrBuf b;
	sb_init(&b);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_append(&b, buf, n);
	fclose(f);
	return b.data;
}

/* A page: the hospital's template (page_template) or a plain accessible default. */
static enum MHD_Result page(struct MHD_Connection *c, unsigned status, const char *title, const char *content)
{
	StrBuf t, out;
	sb_init(&t); sb_init(&out);
	sb_append(&t, "", 0);
	html_escape(&t, title, strlen(title));
	char *tpl = *cfg->page_template ? read_file(cfg->page_template) : NULL;
	if (!tpl) {
		StrBuf org; sb_init(&org); sb_append(&org, "", 0);
		html_escape(&org, cfg->organization, strlen(cfg->organization));
		sb_printf(&out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>%s</title>"
		          "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
		          "button{font-size:1rem;padding:.5rem 1rem}fieldset{margin:1rem 0}</style></head>"
		          "<body><header>%s</header><main><h1>%s</h1>%s</main></body></html>\n", t.data, org.data, t.data, content);
		sb_free(&org);
	} else {
		const char *p = tpl, *q;
		while ((q = strstr(p, "{{"))) {
			sb_append(&out, p, (size_t) (q - p));
			if (!strncmp(q, "{{title}}", 9)) { sb_puts(&out, t.data); p = q + 9; }
			else if (!strncmp(q, "{{content}}", 11)) { sb_puts(&out, content); p = q + 11; }
			else { sb_append(&out, q, 2); p = q + 2; }
		}
		sb_puts(&out, p);
		free(tpl);
	}
	enum MHD_Result r = respond(c, status, "text/html; charset=utf-8", out.data, out.len, NULL);
	sb_free(&t); sb_free(&out);
	return r;
}

static enum MHD_Result bad_link(struct MHD_Connection *c)
{
	count(&metrics.forged);
	return page(c, MHD_HTTP_BAD_REQUEST, "This link is not valid",
	            "<p>The link is incomplete, changed or not ours. Nothing was changed.</p>"
	            "<p>Please use the link exactly as it is in the message you received.</p>");
}

static bool http_db(void)
{
	if (hconn && PQstatus(hconn) == CONNECTION_OK) return true;
	if (hconn) PQfinish(hconn);
	hconn = db_connect(cfg->conninfo, false);
	return hconn != NULL;
}

/* Runs a query; NULL and *status (400 for a rejected request, 503 for a database problem)
 * when it did not return rows. */
static char refused[512];      /* the database's message for the last refused request */

static PGresult *query(const char *sql, int n, const char *const *params, unsigned *status)
{
	refused[0] = '\0';
	if (!http_db()) { *status = MHD_HTTP_SERVICE_UNAVAILABLE; return NULL; }
	PGresult *r = PQexecParams(hconn, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) return r;
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state && (state[0] == '2' || !strcmp(state, "P0002") || !strncmp(state, "55", 2))) {
		*status = MHD_HTTP_BAD_REQUEST;
		const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		snprintf(refused, sizeof refused, "%s", msg ? msg : "");
		log_info("http: request refused: %s", refused);
	} else {
		*status = MHD_HTTP_SERVICE_UNAVAILABLE;
		log_error("http: %s", PQerrorMessage(hconn));
	}
	PQclear(r);
	return NULL;
}

static enum MHD_Result db_failed(struct MHD_Connection *c, unsigned status)
{
	if (status == MHD_HTTP_BAD_REQUEST)
		return page(c, status, "This link cannot be used", "<p>This link is not valid for any message we sent, or has expired. Nothing was changed.</p>");
	return page(c, status, "Please try again later", "<p>The service is temporarily unavailable. Nothing was changed.</p>");
}

static void self_url(StrBuf *b, const char *path, const char *purpose, const char *id)
{
	sb_printf(b, "%s/%s/", cfg->public_base_url, path);
	sign_token(b, cfg->link_secret, purpose, id, NULL);
}

static enum MHD_Result do_open(struct MHD_Connection *c, const char *token)
{
	char id[32], tok[128];
	size_t l = strlen(token);
	if (l < 5 || l >= sizeof tok || strcmp(token + l - 4, ".gif")) return bad_link(c);
	memcpy(tok, token, l - 4);
	tok[l - 4] = '\0';
	if (!verify_token(cfg->link_secret, "open", tok, NULL, id, sizeof id)) return bad_link(c);
	unsigned st;
	const char *p[] = {id};
	PGresult *r = query("SELECT outreach.gateway_open($1::bigint)", 1, p, &st);
	if (!r) return db_failed(c, st);
	PQclear(r);
	count(&metrics.opens);
	return respond(c, MHD_HTTP_OK, "image/gif", pixel_gif, sizeof pixel_gif, NULL);
}

static enum MHD_Result do_click(struct MHD_Connection *c, const char *token)
{
	char id[32];
	const char *url = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "u");
	if (!url || !verify_token(cfg->link_secret, "click", token, url, id, sizeof id)) return bad_link(c);
	unsigned st;
	const char *p[] = {id, url};
	PGresult *r = query("SELECT outreach.gateway_click($1::bigint, $2)", 2, p, &st);
	if (!r) return db_failed(c, st);
	char *dest = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	count(&metrics.clicks);
	StrBuf body;
	sb_init(&body);
	sb_puts(&body, "<p>Continue to <a href=\"");
	html_escape(&body, dest, strlen(dest));
	sb_puts(&body, "\">the page</a>.</p>");
	enum MHD_Result ret = respond(c, MHD_HTTP_FOUND, "text/html; charset=utf-8", body.data, body.len, dest);
	sb_free(&body);
	free(dest);
	return ret;
}

static enum MHD_Result do_unsubscribe(struct MHD_Connection *c, const char *token, bool post)
{
	char id[32];
	if (!verify_token(cfg->link_secret, "unsubscribe", token, NULL, id, sizeof id)) return bad_link(c);
	unsigned st;
	const char *p[] = {id};
	PGresult *r = query("SELECT channel, list_name, done FROM outreach.gateway_unsubscribe_info($1::bigint)", 1, p, &st);
	if (!r) return db_failed(c, st);
	char *channel = xstrdup(PQgetvalue(r, 0, 0));
	char *list = PQgetisnull(r, 0, 1) ? NULL : xstrdup(PQgetvalue(r, 0, 1));
	bool done = PQgetvalue(r, 0, 2)[0] == 't';
	PQclear(r);
	StrBuf what, body;
	sb_init(&what); sb_init(&body);
	sb_append(&what, "", 0);
	if (list) { sb_puts(&what, "messages from the list &ldquo;"); html_escape(&what, list, strlen(list)); sb_puts(&what, "&rdquo;"); }
	else sb_printf(&what, "%s messages from us", !strcmp(channel, "sms") ? "text" : !strcmp(channel, "letter") ? "postal" : "email");
	StrBuf prefs;
	sb_init(&prefs);
	self_url(&prefs, "p", "preferences", id);
	enum MHD_Result ret;
	if (post) {
		r = query("SELECT outreach.gateway_unsubscribe($1::bigint)", 1, p, &st);
		if (!r) ret = db_failed(c, st);
		else {
			PQclear(r);
			count(&metrics.unsubscribes);
			sb_printf(&body, "<p>You will receive no more %s. It took effect at once.</p>"
			          "<p>You can change your mind or choose other messages in <a href=\"%s\">your preferences</a>.</p>", what.data, prefs.data);
			ret = page(c, MHD_HTTP_OK, "You are unsubscribed", body.data);
		}
	} else if (done) {
		sb_printf(&body, "<p>You already receive no more %s.</p><p><a href=\"%s\">Your preferences</a></p>", what.data, prefs.data);
		ret = page(c, MHD_HTTP_OK, "You are unsubscribed", body.data);
	} else {
		sb_printf(&body, "<p>If you continue, you will receive no more %s.</p>"
		          "<form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>"
		          "<p>Or choose what you receive in <a href=\"%s\">your preferences</a>.</p>", what.data, prefs.data);
		ret = page(c, MHD_HTTP_OK, "Unsubscribe", body.data);
	}
	sb_free(&what); sb_free(&body); sb_free(&prefs);
	free(channel); free(list);
	return ret;
}

static enum MHD_Result do_preferences(struct MHD_Connection *c, const char *token, const char *form)
{
	char id[32];
	if (!verify_token(cfg->link_secret, "preferences", token, NULL, id, sizeof id)) return bad_link(c);
	unsigned st;
	const char *p[] = {id, NULL};
	const char *saved = "";
	if (form) {
		/* the form lists every list it showed (known_lists) so unchecked boxes mean "no" */
		PGresult *r = query("SELECT l->>'name' FROM jsonb_array_elements(outreach.gateway_preferences($1::bigint)->'lists') l", 1, p, &st);
		if (!r) return db_failed(c, st);
		StrBuf js;
		sb_init(&js);
		sb_puts(&js, "{");
		static const char *const chans[] = {"email", "sms", "letter"};
		for (int i = 0; i < 3; i++) {
			char *v = form_value(form, chans[i]);
			sb_printf(&js, "\"%s\":%s,", chans[i], v ? "true" : "false");
			free(v);
		}
		char *pc = form_value(form, "preferred_channel");
		sb_puts(&js, "\"preferred_channel\":");
		json_string(&js, pc ? pc : "");
		free(pc);
		sb_puts(&js, ",\"lists\":{");
		for (int i = 0; i < PQntuples(r); i++) {
			StrBuf key;
			sb_init(&key);
			sb_printf(&key, "list:%s", PQgetvalue(r, i, 0));
			char *v = form_value(form, key.data);
			if (i) sb_puts(&js, ",");
			json_string(&js, PQgetvalue(r, i, 0));
			sb_printf(&js, ":%s", v ? "true" : "false");
			free(v);
			sb_free(&key);
		}
		sb_puts(&js, "}}");
		PQclear(r);
		p[1] = js.data;
		r = query("SELECT outreach.gateway_update_preferences($1::bigint, $2::jsonb)", 2, p, &st);
		sb_free(&js);
		if (!r) return db_failed(c, st);
		PQclear(r);
		saved = "<p role=\"status\"><strong>Your preferences are saved.</strong></p>";
	}
	PGresult *r = query(
		"SELECT coalesce(x->>'first_name', ''), coalesce(x->>'preferred_channel', ''),"
		" (x->'channels'->'email'->>'allowed')::bool, (x->'channels'->'sms'->>'allowed')::bool, (x->'channels'->'letter'->>'allowed')::bool,"
		" (x->'channels'->'email'->>'reachable')::bool, (x->'channels'->'sms'->>'reachable')::bool, (x->'channels'->'letter'->>'reachable')::bool"
		" FROM outreach.gateway_preferences($1::bigint) x", 1, p, &st);
	if (!r) return db_failed(c, st);
	PGresult *lists = query("SELECT l->>'name', l->>'status' FROM jsonb_array_elements(outreach.gateway_preferences($1::bigint)->'lists') l", 1, p, &st);
	if (!lists) { PQclear(r); return db_failed(c, st); }
	StrBuf b;
	sb_init(&b);
	sb_puts(&b, saved);
	sb_puts(&b, "<form method=\"post\"><fieldset><legend>How may we contact you?</legend>");
	static const char *const chans[] = {"email", "sms", "letter"};
	static const char *const labels[] = {"Email", "Text messages (SMS)", "Letters by post"};
	for (int i = 0; i < 3; i++) {
		if (PQgetvalue(r, 0, 5 + i)[0] != 't') continue;
		sb_printf(&b, "<div><input type=\"checkbox\" id=\"%s\" name=\"%s\" value=\"on\"%s> <label for=\"%s\">%s</label></div>",
		          chans[i], chans[i], PQgetvalue(r, 0, 2 + i)[0] == 't' ? " checked" : "", chans[i], labels[i]);
	}
	sb_puts(&b, "</fieldset><fieldset><legend>Preferred channel</legend>");
	const char *pref = PQgetvalue(r, 0, 1);
	for (int i = 0; i < 3; i++)
		sb_printf(&b, "<div><input type=\"radio\" id=\"pc_%s\" name=\"preferred_channel\" value=\"%s\"%s> <label for=\"pc_%s\">%s</label></div>",
		          chans[i], chans[i], !strcmp(pref, chans[i]) ? " checked" : "", chans[i], labels[i]);
	sb_printf(&b, "<div><input type=\"radio\" id=\"pc_none\" name=\"preferred_channel\" value=\"\"%s> <label for=\"pc_none\">No preference</label></div></fieldset>",
	          *pref ? "" : " checked");
	if (PQntuples(lists) > 0) {
		sb_puts(&b, "<fieldset><legend>Subscriptions</legend>");
		for (int i = 0; i < PQntuples(lists); i++) {
			const char *name = PQgetvalue(lists, i, 0), *status = PQgetvalue(lists, i, 1);
			StrBuf en;
			sb_init(&en);
			sb_append(&en, "", 0);
			html_escape(&en, name, strlen(name));
			sb_printf(&b, "<div><input type=\"checkbox\" id=\"list%d\" name=\"list:%s\" value=\"on\"%s> <label for=\"list%d\">%s%s</label></div>",
			          i, en.data, strcmp(status, "unsubscribed") ? " checked" : "", i, en.data,
			          !strcmp(status, "pending") ? " (waiting for your confirmation)" : "");
			sb_free(&en);
		}
		sb_puts(&b, "</fieldset>");
	}
	sb_puts(&b, "<button type=\"submit\">Save my preferences</button></form>");
	PQclear(r);
	PQclear(lists);
	enum MHD_Result ret = page(c, MHD_HTTP_OK, "Your communication preferences", b.data);
	sb_free(&b);
	return ret;
}

static enum MHD_Result do_confirm(struct MHD_Connection *c, const char *token, bool post)
{
	char tok[64];
	if (!verify_token(cfg->link_secret, "confirm", token, NULL, tok, sizeof tok)) return bad_link(c);
	if (!post)
		return page(c, MHD_HTTP_OK, "Confirm your subscription",
		            "<p>Please confirm that you want to receive these messages.</p>"
		            "<form method=\"post\"><button type=\"submit\">Confirm my subscription</button></form>");
	unsigned st;
	const char *p[] = {tok};
	PGresult *r = query("SELECT outreach.gateway_confirm($1)", 1, p, &st);
	if (!r) {
		if (st == MHD_HTTP_BAD_REQUEST)
			return page(c, st, "This confirmation link cannot be used",
			            "<p>It was already used, has expired, or was replaced by a newer one. Nothing was changed.</p>");
		return db_failed(c, st);
	}
	StrBuf b;
	sb_init(&b);
	sb_puts(&b, "<p>Thank you. You are now subscribed to &ldquo;");
	html_escape(&b, PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)));
	sb_puts(&b, "&rdquo;.</p>");
	PQclear(r);
	enum MHD_Result ret = page(c, MHD_HTTP_OK, "Subscription confirmed", b.data);
	sb_free(&b);
	return ret;
}

/* Every value of key in a form body, as a PostgreSQL text[] literal ("{}" when none). */
static void form_array(StrBuf *b, const char *body, const char *key)
{
	size_t kl = strlen(key);
	int n = 0;
	sb_puts(b, "{");
	for (const char *p = body; p && *p;) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t) (end - p) : strlen(p);
		if (len > kl && p[kl] == '=' && !strncmp(p, key, kl)) {
			char *v = url_decode(p + kl + 1, len - kl - 1);
			sb_puts(b, n++ ? ",\"" : "\"");
			for (const char *c = v; *c; c++) {
				if (*c == '"' || *c == '\\') sb_append(b, "\\", 1);
				sb_append(b, c, 1);
			}
			sb_puts(b, "\"");
			free(v);
		}
		p = end ? end + 1 : NULL;
	}
	sb_puts(b, "}");
}

static void esc(StrBuf *b, const char *s) { html_escape(b, s, strlen(s)); }

/* The event registration page (DESIGN §9): GET /e/TOKEN shows the event and a form, POST
 * registers the contact the link was signed for.  TOKEN = EVENTxCONTACT.SIG (purpose "event"). */
static enum MHD_Result do_event(struct MHD_Connection *c, const char *token, const char *form)
{
	char id[48];
	long long event_id, contact_id;
	char tail;
	if (!verify_token(cfg->link_secret, "event", token, NULL, id, sizeof id)
	    || sscanf(id, "%lldx%lld%c", &event_id, &contact_id, &tail) != 2) return bad_link(c);
	char ev[24], ct[24];
	snprintf(ev, sizeof ev, "%lld", event_id);
	snprintf(ct, sizeof ct, "%lld", contact_id);
	unsigned st;
	const char *p[] = {ev, ct, NULL};
	PGresult *r = query(
		"SELECT x->>'name', x->>'state', x->>'starts_at', x->>'ends_at', coalesce(x->>'venue', ''), coalesce(x->>'online_url', ''),"
		" coalesce(x->>'description', ''), coalesce(x->>'free_seats', ''), coalesce(x->>'opens_at', ''),"
		" x->'registration'->>'code', x->'registration'->>'status', x->'registration'->>'waitlist_position'"
		" FROM outreach.gateway_event_info($1::bigint, $2::bigint) x", 2, p, &st);
	if (!r) return db_failed(c, st);
	char *name = xstrdup(PQgetvalue(r, 0, 0)), *state = xstrdup(PQgetvalue(r, 0, 1));
	StrBuf about, b;
	sb_init(&about); sb_init(&b);
	sb_puts(&about, "<dl><dt>When</dt><dd>");
	esc(&about, PQgetvalue(r, 0, 2));
	sb_puts(&about, " to ");
	esc(&about, PQgetvalue(r, 0, 3));
	sb_puts(&about, "</dd>");
	if (*PQgetvalue(r, 0, 4)) { sb_puts(&about, "<dt>Where</dt><dd>"); esc(&about, PQgetvalue(r, 0, 4)); sb_puts(&about, "</dd>"); }
	const char *url = PQgetvalue(r, 0, 5);
	if (!strncasecmp(url, "https://", 8) || !strncasecmp(url, "http://", 7)) {
		sb_puts(&about, "<dt>Online</dt><dd><a href=\"");
		esc(&about, url);
		sb_puts(&about, "\">");
		esc(&about, url);
		sb_puts(&about, "</a></dd>");
	}
	sb_puts(&about, "</dl>");
	if (*PQgetvalue(r, 0, 6)) { sb_puts(&about, "<p>"); esc(&about, PQgetvalue(r, 0, 6)); sb_puts(&about, "</p>"); }
	bool registered = !PQgetisnull(r, 0, 9);
	char *code = registered ? xstrdup(PQgetvalue(r, 0, 9)) : NULL;
	char *rstatus = registered ? xstrdup(PQgetvalue(r, 0, 10)) : NULL;
	char *position = registered && !PQgetisnull(r, 0, 11) ? xstrdup(PQgetvalue(r, 0, 11)) : NULL;
	char *free_seats = xstrdup(PQgetvalue(r, 0, 7)), *opens = xstrdup(PQgetvalue(r, 0, 8));
	PQclear(r);
	unsigned status = MHD_HTTP_OK;
	const char *title;
	enum MHD_Result ret;
	if (!strcmp(state, "cancelled")) {
		/* nothing to register for: said plainly, and a POST changes nothing */
		status = MHD_HTTP_GONE;
		title = "This event was cancelled";
		sb_puts(&b, "<p>&ldquo;"); esc(&b, name);
		sb_puts(&b, "&rdquo; was cancelled. There is nothing to register for, and nothing was changed.</p>");
		sb_puts(&b, "<p>If you were registered, your registration is cancelled too; we are sorry for the trouble.</p>");
	} else if (form && !registered && !strcmp(state, "open")) {
		StrBuf sessions;
		sb_init(&sessions);
		form_array(&sessions, form, "session");
		p[2] = sessions.data;
		r = query("SELECT code, status, waitlist_position FROM outreach.gateway_register($1::bigint, $2::bigint, $3::text[])", 3, p, &st);
		sb_free(&sessions);
		if (!r) {
			free(name); free(state); free(free_seats); free(opens); sb_free(&about); sb_free(&b);
			if (st != MHD_HTTP_BAD_REQUEST) return db_failed(c, st);
			StrBuf e;
			sb_init(&e);
			sb_puts(&e, "<p>You were not registered: ");
			esc(&e, refused);
			sb_puts(&e, ".</p><p>Nothing was changed. Please call us if you need help.</p>");
			ret = page(c, MHD_HTTP_BAD_REQUEST, "Registration not possible", e.data);
			sb_free(&e);
			return ret;
		}
		registered = true;
		code = xstrdup(PQgetvalue(r, 0, 0));
		rstatus = xstrdup(PQgetvalue(r, 0, 1));
		position = PQgetisnull(r, 0, 2) ? NULL : xstrdup(PQgetvalue(r, 0, 2));
		PQclear(r);
	}
	if (!strcmp(state, "cancelled")) {
		/* done above */
	} else if (registered) {
		bool waiting = !strcmp(rstatus, "waitlisted");
		title = waiting ? "You are on the waitlist" : "You are registered";
		sb_puts(&b, "<p>&ldquo;"); esc(&b, name); sb_puts(&b, "&rdquo;</p>");
		sb_puts(&b, about.data);
		sb_puts(&b, "<p>Your registration code: <strong class=\"code\">"); esc(&b, code);
		sb_puts(&b, "</strong>. Please bring it with you or have it ready when you call us.</p>");
		if (waiting)
			sb_printf(&b, "<p>The event is full. You are number <strong class=\"position\">%s</strong> on the waitlist; "
			          "we will write to you as soon as a seat becomes free.</p>", position ? position : "?");
	} else if (strcmp(state, "open") != 0) {
		title = !strcmp(state, "not_open_yet") ? "Registration is not open yet" : !strcmp(state, "over") ? "This event is over"
		        : !strcmp(state, "not_published") ? "This event is not open for registration" : "Registration is closed";
		sb_puts(&b, "<p>&ldquo;"); esc(&b, name); sb_puts(&b, "&rdquo;</p>");
		sb_puts(&b, about.data);
		if (!strcmp(state, "not_open_yet") && *opens) { sb_puts(&b, "<p>Registration opens "); esc(&b, opens); sb_puts(&b, ".</p>"); }
		else sb_puts(&b, "<p>You can no longer register for this event online. Nothing was changed.</p>");
	} else {
		title = "Register for the event";
		sb_puts(&b, "<p>&ldquo;"); esc(&b, name); sb_puts(&b, "&rdquo;</p>");
		sb_puts(&b, about.data);
		if (*free_seats)
			sb_printf(&b, !strcmp(free_seats, "0") ? "<p>The event is full: if you register, you join the waitlist.</p>"
			                                       : "<p>Free seats: %s.</p>", free_seats);
		sb_puts(&b, "<form method=\"post\">");
		r = query("SELECT s->>'name', s->>'starts_at', coalesce(s->>'free_seats', '') FROM"
		          " jsonb_array_elements(outreach.gateway_event_info($1::bigint, $2::bigint)->'sessions') s", 2, p, &st);
		if (r && PQntuples(r) > 0) {
			sb_puts(&b, "<fieldset><legend>Sessions you would like to attend</legend>");
			for (int i = 0; i < PQntuples(r); i++) {
				sb_printf(&b, "<div><input type=\"checkbox\" id=\"s%d\" name=\"session\" value=\"", i);
				esc(&b, PQgetvalue(r, i, 0));
				sb_printf(&b, "\"> <label for=\"s%d\">", i);
				esc(&b, PQgetvalue(r, i, 0));
				sb_puts(&b, ", ");
				esc(&b, PQgetvalue(r, i, 1));
				const char *fs = PQgetvalue(r, i, 2);
				if (!strcmp(fs, "0")) sb_puts(&b, " (full: waitlist)");
				else if (*fs) sb_printf(&b, " (%s free)", fs);
				sb_puts(&b, "</label></div>");
			}
			sb_puts(&b, "</fieldset>");
		}
		if (r) PQclear(r);
		sb_puts(&b, "<button type=\"submit\">Register</button></form>");
	}
	ret = page(c, status, title, b.data);
	free(name); free(state); free(code); free(rstatus); free(position); free(free_seats); free(opens);
	sb_free(&about); sb_free(&b);
	return ret;
}

typedef struct Pair { char *k, *v; } Pair;
static int pair_cmp(const void *a, const void *b) { return strcmp(((const Pair *) a)->k, ((const Pair *) b)->k); }

/* Twilio's request signature: base64(HMAC-SHA1(auth token, URL + each POST parameter's name
 * and value, sorted by name)), the URL being public_base_url/sms/inbound as Twilio calls it. */
static bool twilio_signature_ok(struct MHD_Connection *c, const char *body)
{
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Twilio-Signature");
	if (!sig || strcmp(cfg->sms_provider, "twilio") || !*cfg->sms_token) return false;
	Pair pairs[128];
	int n = 0;
	for (const char *p = body; p && *p && n < 128;) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t) (end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t kl = eq ? (size_t) (eq - p) : len;
		pairs[n].k = url_decode(p, kl);
		pairs[n].v = eq ? url_decode(eq + 1, len - kl - 1) : xstrdup("");
		n++;
		if (!end) break;
		p = end + 1;
	}
	qsort(pairs, (size_t) n, sizeof(Pair), pair_cmp);
	StrBuf data, b64;
	sb_init(&data); sb_init(&b64);
	sb_printf(&data, "%s/sms/inbound", cfg->public_base_url);
	for (int i = 0; i < n; i++) { sb_puts(&data, pairs[i].k); sb_puts(&data, pairs[i].v); free(pairs[i].k); free(pairs[i].v); }
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	HMAC(EVP_sha1(), cfg->sms_token, (int) strlen(cfg->sms_token), (const unsigned char *) data.data, data.len, mac, &ml);
	base64_encode(&b64, mac, ml, false);
	bool ok = strlen(sig) == b64.len && CRYPTO_memcmp(sig, b64.data, b64.len) == 0;
	sb_free(&data); sb_free(&b64);
	return ok;
}

static bool key_ok(struct MHD_Connection *c)
{
	const char *k = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
	if (!k) k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Outreach-Key");
	size_t l = strlen(cfg->sms_inbound_token);
	return l > 0 && k && strlen(k) == l && CRYPTO_memcmp(k, cfg->sms_inbound_token, l) == 0;
}

static bool is_json(struct MHD_Connection *c)
{
	const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	return t && strncasecmp(t, "application/json", 16) == 0;
}

static enum MHD_Result plain(struct MHD_Connection *c, unsigned status, const char *text)
{
	return respond(c, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

static enum MHD_Result do_inbound(struct MHD_Connection *c, const char *body)
{
	if (!key_ok(c) && !(!is_json(c) && twilio_signature_ok(c, body))) { count(&metrics.forged); return plain(c, MHD_HTTP_FORBIDDEN, "forbidden\n"); }
	unsigned st;
	PGresult *r;
	if (is_json(c)) {
		const char *p[] = {body};
		r = query("SELECT outreach.gateway_inbound_sms(j->>'from', coalesce(j->>'text', j->>'body')) FROM (SELECT $1::jsonb j) s", 1, p, &st);
	} else {
		char *from = form_value(body, "From"), *text = form_value(body, "Body");
		const char *p[] = {from, text};
		r = query("SELECT outreach.gateway_inbound_sms($1, $2)", 2, p, &st);
		free(from); free(text);
	}
	if (!r) return plain(c, st, st == MHD_HTTP_BAD_REQUEST ? "bad request\n" : "unavailable\n");
	const char *reply = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
	StrBuf b;
	sb_init(&b);
	enum MHD_Result ret;
	if (!strcmp(cfg->sms_provider, "twilio")) {
		sb_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
		if (reply) { sb_puts(&b, "<Message>"); html_escape(&b, reply, strlen(reply)); sb_puts(&b, "</Message>"); }
		sb_puts(&b, "</Response>");
		ret = respond(c, MHD_HTTP_OK, "text/xml; charset=utf-8", b.data, b.len, NULL);
	} else {
		sb_puts(&b, "{\"reply\":");
		if (reply) json_string(&b, reply); else sb_puts(&b, "null");
		sb_puts(&b, "}");
		ret = respond(c, MHD_HTTP_OK, "application/json", b.data, b.len, NULL);
	}
	PQclear(r);
	sb_free(&b);
	return ret;
}

static enum MHD_Result do_receipt(struct MHD_Connection *c, const char *token, const char *body)
{
	char id[32];
	if (!verify_token(cfg->link_secret, "receipt", token, NULL, id, sizeof id)) { count(&metrics.forged); return plain(c, MHD_HTTP_FORBIDDEN, "forbidden\n"); }
	unsigned st;
	PGresult *r;
	if (is_json(c)) {
		const char *p[] = {id, body};
		r = query("SELECT outreach.gateway_sms_receipt($1::bigint, j->>'status', j->>'detail') FROM (SELECT $2::jsonb j) s", 2, p, &st);
	} else {
		char *status = form_value(body, "MessageStatus"), *code = form_value(body, "ErrorCode");
		const char *p[] = {id, status, code};
		r = query("SELECT outreach.gateway_sms_receipt($1::bigint, $2, 'provider error ' || $3)", 3, p, &st);
		free(status); free(code);
	}
	if (!r) return plain(c, st, st == MHD_HTTP_BAD_REQUEST ? "bad request\n" : "unavailable\n");
	StrBuf b;
	sb_init(&b);
	sb_printf(&b, "%s\n", PQgetvalue(r, 0, 0));
	PQclear(r);
	enum MHD_Result ret = plain(c, MHD_HTTP_OK, b.data);
	sb_free(&b);
	return ret;
}

static enum MHD_Result do_healthz(struct MHD_Connection *c)
{
	unsigned st;
	PGresult *r = query("SELECT 1", 0, NULL, &st);
	if (!r) return plain(c, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable\n");
	PQclear(r);
	double idle = now_seconds() - metrics.last_loop_at;
	if (metrics.last_loop_at > 0 && idle > cfg->poll_seconds + cfg->lease_seconds + 60)
		return plain(c, MHD_HTTP_SERVICE_UNAVAILABLE, "send loop stalled\n");
	return plain(c, MHD_HTTP_OK, "ok\n");
}

static enum MHD_Result do_metrics(struct MHD_Connection *c)
{
	StrBuf b;
	sb_init(&b);
	Metrics m;
	pthread_mutex_lock(&metrics_lock);
	m = metrics;
	pthread_mutex_unlock(&metrics_lock);
	sb_puts(&b, "# HELP outreach_gateway_messages_total Messages the gateway finished, by channel and result (retried: a temporary failure, queued again).\n"
	            "# TYPE outreach_gateway_messages_total counter\n");
	for (int i = 0; i < 3; i++)
		sb_printf(&b, "outreach_gateway_messages_total{channel=\"%s\",result=\"sent\"} %lu\n"
		              "outreach_gateway_messages_total{channel=\"%s\",result=\"bounced\"} %lu\n"
		              "outreach_gateway_messages_total{channel=\"%s\",result=\"failed\"} %lu\n"
		              "outreach_gateway_messages_total{channel=\"%s\",result=\"retried\"} %lu\n",
		          channel_names[i], m.sent[i], channel_names[i], m.bounced[i], channel_names[i], m.failed[i], channel_names[i], m.retried[i]);
	sb_printf(&b, "# HELP outreach_gateway_claimed_total Messages claimed from the outbox.\n# TYPE outreach_gateway_claimed_total counter\n"
	              "outreach_gateway_claimed_total %lu\n", m.claimed);
	sb_puts(&b, "# HELP outreach_gateway_provider_latency_seconds Time per provider call (SMTP transaction, SMS API request).\n"
	            "# TYPE outreach_gateway_provider_latency_seconds summary\n");
	for (int i = 0; i < 2; i++)
		sb_printf(&b, "outreach_gateway_provider_latency_seconds_sum{channel=\"%s\"} %.6f\n"
		              "outreach_gateway_provider_latency_seconds_count{channel=\"%s\"} %lu\n",
		          channel_names[i], m.latency_sum[i], channel_names[i], m.latency_count[i]);
	sb_printf(&b, "# HELP outreach_gateway_interactions_total Opens, clicks and unsubscribes recorded through the endpoints.\n"
	              "# TYPE outreach_gateway_interactions_total counter\n"
	              "outreach_gateway_interactions_total{kind=\"opened\"} %lu\noutreach_gateway_interactions_total{kind=\"clicked\"} %lu\n"
	              "outreach_gateway_interactions_total{kind=\"unsubscribed\"} %lu\n"
	              "# HELP outreach_gateway_invalid_tokens_total Requests refused because their token or key did not verify.\n"
	              "# TYPE outreach_gateway_invalid_tokens_total counter\noutreach_gateway_invalid_tokens_total %lu\n"
	              "# HELP outreach_gateway_db_reconnects_total Times the send loop re-established its PostgreSQL connection.\n"
	              "# TYPE outreach_gateway_db_reconnects_total counter\noutreach_gateway_db_reconnects_total %lu\n"
	              "# HELP outreach_gateway_start_time_seconds When the gateway started (Unix time).\n"
	              "# TYPE outreach_gateway_start_time_seconds gauge\noutreach_gateway_start_time_seconds %.0f\n",
	          m.opens, m.clicks, m.unsubscribes, m.forged, m.db_reconnects, m.started_at);
	unsigned st;
	PGresult *r = query("SELECT channel, status, messages, oldest_due_seconds FROM outreach.gateway_queue_depth()", 0, NULL, &st);
	sb_puts(&b, "# HELP outreach_gateway_queue_depth Messages in the outbox that are not final, by channel and status (queued includes not yet due).\n"
	            "# TYPE outreach_gateway_queue_depth gauge\n");
	if (r) {
		for (int i = 0; i < PQntuples(r); i++)
			sb_printf(&b, "outreach_gateway_queue_depth{channel=\"%s\",status=\"%s\"} %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
		sb_puts(&b, "# HELP outreach_gateway_oldest_due_seconds Age of the oldest message that is due and not yet sent.\n"
		            "# TYPE outreach_gateway_oldest_due_seconds gauge\n");
		for (int i = 0; i < PQntuples(r); i++)
			if (!strcmp(PQgetvalue(r, i, 1), "queued"))
				sb_printf(&b, "outreach_gateway_oldest_due_seconds{channel=\"%s\"} %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 3));
		PQclear(r);
	}
	sb_printf(&b, "# HELP outreach_gateway_database_up Whether the HTTP side reaches PostgreSQL.\n# TYPE outreach_gateway_database_up gauge\n"
	              "outreach_gateway_database_up %d\n", r ? 1 : 0);
	enum MHD_Result ret = respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
	sb_free(&b);
	return ret;
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method, const char *body)
{
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
	if (!get && !post) return plain(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (!strcmp(url, "/healthz") && get) return do_healthz(c);
	if (!strcmp(url, "/metrics") && get) return do_metrics(c);
	if (!strncmp(url, "/o/", 3) && get) return do_open(c, url + 3);
	if (!strncmp(url, "/c/", 3) && get) return do_click(c, url + 3);
	if (!strncmp(url, "/u/", 3)) return do_unsubscribe(c, url + 3, post);
	if (!strncmp(url, "/p/", 3)) return do_preferences(c, url + 3, post ? body : NULL);
	if (!strncmp(url, "/confirm/", 9)) return do_confirm(c, url + 9, post);
	if (!strncmp(url, "/e/", 3)) return do_event(c, url + 3, post ? body : NULL);
	if (!strcmp(url, "/sms/inbound") && post) return do_inbound(c, body);
	if (!strncmp(url, "/sms/receipt/", 13) && post) return do_receipt(c, url + 13, body);
	return plain(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **ctx)
{
	(void) cls; (void) version;
	Req *rq = *ctx;
	if (!rq) {
		rq = xmalloc(sizeof *rq);
		sb_init(&rq->body);
		sb_append(&rq->body, "", 0);
		rq->too_big = false;
		*ctx = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->body.len + *upload_size > 65536) rq->too_big = true;
		else sb_append(&rq->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->too_big) return plain(c, MHD_HTTP_CONTENT_TOO_LARGE, "request too large\n");
	pthread_rwlock_rdlock(&config_lock);
	cfg = current_config;
	enum MHD_Result r = route(c, url, method, rq->body.data);
	log_debug("http: %s %s", method, url);
	pthread_rwlock_unlock(&config_lock);
	return r;
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode code)
{
	(void) cls; (void) c; (void) code;
	Req *rq = *ctx;
	if (rq) { sb_free(&rq->body); free(rq); }
	*ctx = NULL;
}

bool http_start(const Config *config, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(config->http_listen, ':');
	if (!colon || (size_t) (colon - config->http_listen) >= sizeof host) {
		snprintf(err, errlen, "http_listen must be address:port, not \"%s\"", config->http_listen);
		return false;
	}
	memcpy(host, config->http_listen, (size_t) (colon - config->http_listen));
	host[colon - config->http_listen] = '\0';
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t) atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "http_listen: \"%s\" is not an IPv4 address", host);
		return false;
	}
	daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, ntohs(sa.sin_port), NULL, NULL,
	                           handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
	                           MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
	                           MHD_OPTION_CONNECTION_LIMIT, (unsigned) 256, MHD_OPTION_END);
	if (!daemon_) {
		snprintf(err, errlen, "could not listen on %s (in use, or not an address of this machine)", config->http_listen);
		return false;
	}
	log_info("HTTP endpoints on http://%s (public base %s)", config->http_listen, config->public_base_url);
	return true;
}

void http_stop(void)
{
	if (daemon_) MHD_stop_daemon(daemon_);
	daemon_ = NULL;
	if (hconn) PQfinish(hconn);
	hconn = NULL;
}
