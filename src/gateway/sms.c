/*
 * sms.c: text messages through an HTTP provider.  Two request shapes (docs/delivery.md):
 *   generic  POST sms_url, JSON {"to","from","text","message_id","callback_url"},
 *            Authorization: Bearer sms_token
 *   twilio   POST sms_url (…/Accounts/SID/Messages.json), form To, From, Body,
 *            StatusCallback, HTTP basic auth sms_account:sms_token
 * The callback URL carries a signed token for the message, so delivery receipts need no
 * provider message id.  2xx: sent; 429, 5xx and network errors: retried; other 4xx: failed.
 */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

static size_t sink(char *p, size_t s, size_t n, void *arg)
{
	StrBuf *b = arg;
	if (b->len < 2048) sb_append(b, p, s * n);
	return s * n;
}

void sms_send(const Config *cfg, Message *m)
{
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", m->id);
	StrBuf text, unsub, cb, req, resp;
	sb_init(&text); sb_init(&unsub); sb_init(&cb); sb_init(&req); sb_init(&resp);
	sb_printf(&unsub, "%s/u/", cfg->public_base_url);
	sign_token(&unsub, cfg->link_secret, "unsubscribe", ids, NULL);
	const char *body = m->body ? m->body : "";
	if (m->unsubscribe_url && *m->unsubscribe_url && strstr(body, m->unsubscribe_url)) {
		const char *p = body, *q;
		while ((q = strstr(p, m->unsubscribe_url))) { sb_append(&text, p, (size_t) (q - p)); sb_puts(&text, unsub.data); p = q + strlen(m->unsubscribe_url); }
		sb_puts(&text, p);
	} else sb_puts(&text, body);
	sb_printf(&cb, "%s/sms/receipt/", cfg->public_base_url);
	sign_token(&cb, cfg->link_secret, "receipt", ids, NULL);

	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char auth[1024], eb[CURL_ERROR_SIZE] = "";
	bool twilio = strcmp(cfg->sms_provider, "twilio") == 0;
	if (twilio) {
		char *e;
		sb_puts(&req, "To="); e = curl_easy_escape(h, m->address, 0); sb_puts(&req, e); curl_free(e);
		sb_puts(&req, "&From="); e = curl_easy_escape(h, cfg->sms_from, 0); sb_puts(&req, e); curl_free(e);
		sb_puts(&req, "&Body="); e = curl_easy_escape(h, text.data ? text.data : "", 0); sb_puts(&req, e); curl_free(e);
		sb_puts(&req, "&StatusCallback="); e = curl_easy_escape(h, cb.data, 0); sb_puts(&req, e); curl_free(e);
		curl_easy_setopt(h, CURLOPT_USERNAME, cfg->sms_account);
		curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->sms_token);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
	} else {
		sb_puts(&req, "{\"to\":"); json_string(&req, m->address);
		sb_puts(&req, ",\"from\":"); json_string(&req, cfg->sms_from);
		sb_puts(&req, ",\"text\":"); json_string(&req, text.data);
		sb_printf(&req, ",\"message_id\":\"%s\",\"callback_url\":", ids); json_string(&req, cb.data);
		sb_puts(&req, "}");
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		if (*cfg->sms_token) { snprintf(auth, sizeof auth, "Authorization: Bearer %s", cfg->sms_token); hdrs = curl_slist_append(hdrs, auth); }
	}
	curl_easy_setopt(h, CURLOPT_URL, cfg->sms_url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.data);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) req.len);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, eb);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	double t0 = now_seconds();
	CURLcode rc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	pthread_mutex_lock(&metrics_lock);
	metrics.latency_sum[1] += now_seconds() - t0;
	metrics.latency_count[1]++;
	pthread_mutex_unlock(&metrics_lock);
	char detail[512];
	if (rc == CURLE_OK && code >= 200 && code < 300) {
		m->status = "sent";
		snprintf(detail, sizeof detail, "sms provider http %ld", code);
	} else if (rc == CURLE_OK && code >= 400 && code < 500 && code != 429 && code != 408) {
		m->status = "failed";
		snprintf(detail, sizeof detail, "sms provider http %ld: %.300s", code, resp.data ? resp.data : "");
	} else {
		m->status = "retry";
		double d = cfg->retry_base_seconds;
		for (int i = 1; i < m->attempts && d < cfg->retry_max_seconds; i++) d *= 2;
		m->retry_at = now_seconds() + (d > cfg->retry_max_seconds ? cfg->retry_max_seconds : d);
		if (rc == CURLE_OK) snprintf(detail, sizeof detail, "sms provider http %ld", code);
		else snprintf(detail, sizeof detail, "sms provider: %s", eb[0] ? eb : curl_easy_strerror(rc));
	}
	m->detail = xstrdup(detail);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	sb_free(&text); sb_free(&unsub); sb_free(&cb); sb_free(&req); sb_free(&resp);
}
