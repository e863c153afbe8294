/*
 * db.c: the send loop's PostgreSQL side, through the outreach.gateway_* functions
 * (sql/parts/85_delivery.sql).  Every call is one statement in its own transaction; a
 * broken connection is reported by returning failure, and main.c reconnects.
 */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void notice_quiet(void *arg, const char *msg) { (void) arg; log_debug("postgres: %s", msg); }

PGconn *db_connect(const char *conninfo, bool listen)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		log_warning("could not connect to PostgreSQL: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, notice_quiet, NULL);
	PGresult *r = PQexec(c, "SET application_name = 'outreach-gateway'");
	PQclear(r);
	if (listen) {
		r = PQexec(c, "LISTEN outreach_outbox");
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_warning("LISTEN failed: %s", PQerrorMessage(c));
			PQclear(r);
			PQfinish(c);
			return NULL;
		}
		PQclear(r);
	}
	return c;
}

bool db_ok(PGconn *c) { return c && PQstatus(c) == CONNECTION_OK; }

static char *col(PGresult *r, int row, int n)
{
	return PQgetisnull(r, row, n) ? NULL : xstrdup(PQgetvalue(r, row, n));
}

static bool colbool(PGresult *r, int row, int n) { return !PQgetisnull(r, row, n) && PQgetvalue(r, row, n)[0] == 't'; }

void message_free(Message *m)
{
	free(m->channel); free(m->message_class); free(m->address); free(m->subject); free(m->body);
	free(m->unsubscribe_url); free(m->list_name); free(m->contact_name); free(m->detail);
	free(m->attachments);
}

/* Returns the number of messages claimed, or -1 on a database error. */
int db_claim(PGconn *c, const Config *cfg, Message **out)
{
	char batch[16], lease[32], attempts[16];
	snprintf(batch, sizeof batch, "%d", cfg->batch_size);
	snprintf(lease, sizeof lease, "%d seconds", cfg->lease_seconds);
	snprintf(attempts, sizeof attempts, "%d", cfg->max_attempts);
	const char *params[] = {cfg->worker, batch, lease, attempts};
	PGresult *r = PQexecParams(c,
		"SELECT id, channel, message_class, address, subject, body, html, unsubscribe_url, list_name, contact_name,"
		" open_pixel, click_tracking, attempts, contact_id, attachments FROM outreach.gateway_claim($1, $2::int, $3::interval, $4::int)",
		4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_error("claiming messages failed: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	int n = PQntuples(r);
	Message *msgs = n ? xmalloc(sizeof(Message) * (size_t) n) : NULL;
	for (int i = 0; i < n; i++) {
		Message *m = &msgs[i];
		memset(m, 0, sizeof *m);
		m->id = atoll(PQgetvalue(r, i, 0));
		m->channel = col(r, i, 1); m->message_class = col(r, i, 2); m->address = col(r, i, 3);
		m->subject = col(r, i, 4); m->body = col(r, i, 5); m->html = colbool(r, i, 6);
		m->unsubscribe_url = col(r, i, 7); m->list_name = col(r, i, 8); m->contact_name = col(r, i, 9);
		m->open_pixel = colbool(r, i, 10); m->click_tracking = colbool(r, i, 11);
		m->attempts = atoi(PQgetvalue(r, i, 12));
		m->contact_id = atoll(PQgetvalue(r, i, 13));
		m->attachments = col(r, i, 14);
	}
	PQclear(r);
	*out = msgs;
	return n;
}

static void array_text(StrBuf *b, const char *s)
{
	if (!s) { sb_puts(b, "NULL"); return; }
	sb_append(b, "\"", 1);
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\') sb_append(b, "\\", 1);
		sb_append(b, p, 1);
	}
	sb_append(b, "\"", 1);
}

/* Sends the results of every message of msgs[0..n) that has one and is neither reported nor
 * in flight, as one gateway_report call, without waiting for the answer.  Returns the
 * number of results sent, or -1 when the query could not be sent. */
int db_report_send(PGconn *c, const Config *cfg, Message *msgs, int n)
{
	StrBuf ids, sts, dets, hbs, rets;
	sb_init(&ids); sb_init(&sts); sb_init(&dets); sb_init(&hbs); sb_init(&rets);
	sb_puts(&ids, "{"); sb_puts(&sts, "{"); sb_puts(&dets, "{"); sb_puts(&hbs, "{"); sb_puts(&rets, "{");
	int k = 0;
	for (int i = 0; i < n; i++) {
		Message *m = &msgs[i];
		if (!m->status || m->reported || m->inflight) continue;
		const char *sep = k++ ? "," : "";
		sb_printf(&ids, "%s%lld", sep, m->id);
		sb_puts(&sts, sep); array_text(&sts, m->status);
		sb_puts(&dets, sep); array_text(&dets, m->detail);
		sb_printf(&hbs, "%s%s", sep, m->hard_bounce ? "t" : "f");
		if (m->retry_at > 0) {
			time_t t = (time_t) m->retry_at;
			struct tm tm;
			char ts[64];
			gmtime_r(&t, &tm);
			strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S+00", &tm);
			sb_printf(&rets, "%s\"%s\"", sep, ts);
		} else sb_printf(&rets, "%sNULL", sep);
	}
	sb_puts(&ids, "}"); sb_puts(&sts, "}"); sb_puts(&dets, "}"); sb_puts(&hbs, "}"); sb_puts(&rets, "}");
	int ret = k;
	if (k > 0) {
		char attempts[16];
		snprintf(attempts, sizeof attempts, "%d", cfg->max_attempts);
		const char *params[] = {ids.data, sts.data, dets.data, hbs.data, cfg->worker, rets.data, attempts};
		if (!PQsendQueryParams(c,
			"SELECT id, outcome FROM outreach.gateway_report($1::bigint[], $2::text[], $3::text[], $4::boolean[], $5,"
			" $6::timestamptz[], $7::int)", 7, NULL, params, NULL, NULL, 0)) {
			log_error("reporting %d result(s) failed: %s", k, PQerrorMessage(c));
			ret = -1;
		} else
			for (int i = 0; i < n; i++)
				if (msgs[i].status && !msgs[i].reported) msgs[i].inflight = true;
	}
	sb_free(&ids); sb_free(&sts); sb_free(&dets); sb_free(&hbs); sb_free(&rets);
	return ret;
}

/* Collects the answer to db_report_send: 1 done (the messages are marked reported), 0 still
 * running (only when !wait), -1 failed (they will be sent again). */
int db_report_collect(PGconn *c, Message *msgs, int n, bool wait)
{
	bool any = false;
	for (int i = 0; i < n; i++) any |= msgs[i].inflight;
	if (!any) return 1;
	if (!wait) {
		if (!PQconsumeInput(c)) goto failed;
		if (PQisBusy(c)) return 0;
	}
	bool ok = true;
	PGresult *r;
	while ((r = PQgetResult(c))) {
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			log_error("reporting results failed: %s", PQerrorMessage(c));
			ok = false;
		} else
			for (int i = 0; i < PQntuples(r); i++)
				if (strcmp(PQgetvalue(r, i, 1), "ok") != 0)
					log_warning("message %s: result not recorded: %s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		PQclear(r);
	}
	if (!ok) goto failed;
	for (int i = 0; i < n; i++)
		if (msgs[i].inflight) { msgs[i].inflight = false; msgs[i].reported = true; }
	return 1;
failed:
	for (int i = 0; i < n; i++) msgs[i].inflight = false;
	return -1;
}

/* Reports synchronously (send and wait). */
bool db_report(PGconn *c, const Config *cfg, Message *msgs, int n)
{
	if (db_report_collect(c, msgs, n, true) < 0) return false;
	int k = db_report_send(c, cfg, msgs, n);
	if (k < 0) return false;
	if (k == 0) return true;
	return db_report_collect(c, msgs, n, true) == 1;
}

bool db_renew(PGconn *c, const Config *cfg, Message *msgs, int n)
{
	StrBuf ids;
	sb_init(&ids);
	sb_puts(&ids, "{");
	int k = 0;
	for (int i = 0; i < n; i++)
		if (!msgs[i].reported) sb_printf(&ids, "%s%lld", k++ ? "," : "", msgs[i].id);
	sb_puts(&ids, "}");
	char lease[32];
	snprintf(lease, sizeof lease, "%d seconds", cfg->lease_seconds);
	const char *params[] = {ids.data, cfg->worker, lease};
	PGresult *r = PQexecParams(c, "SELECT outreach.gateway_renew($1::bigint[], $2, $3::interval)", 3, NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok) log_warning("renewing leases failed: %s", PQerrorMessage(c));
	PQclear(r);
	sb_free(&ids);
	return ok;
}

int db_release(PGconn *c, const char *worker)
{
	const char *params[] = {worker};
	PGresult *r = PQexecParams(c, "SELECT outreach.gateway_release($1)", 1, NULL, params, NULL, NULL, 0);
	int n = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK) n = atoi(PQgetvalue(r, 0, 0));
	else log_warning("releasing claims failed: %s", PQerrorMessage(c));
	PQclear(r);
	return n;
}

/* Seconds until the next queued message is due (or a lease runs out); -1: nothing pending;
 * -2: database error. */
double db_next_due(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT extract(epoch FROM outreach.gateway_next_due() - clock_timestamp())");
	double s = -2;
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
	{
		if (PQgetisnull(r, 0, 0)) s = -1;
		else { s = atof(PQgetvalue(r, 0, 0)); if (s < 0) s = 0; }
	}
	else log_error("reading the next due time failed: %s", PQerrorMessage(c));
	PQclear(r);
	return s;
}
