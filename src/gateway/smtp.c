/*
 * smtp.c: sends a batch of emails over up to `concurrency` SMTP connections at once with a
 * libcurl multi handle.  Connections stay open between messages and batches (libcurl's
 * connection cache), STARTTLS/SMTPS and AUTH as configured.  Each result is classified:
 * 2xx sent; 5xx permanent (bounced; a hard bounce for 550/551/553, which opts the contact
 * out of email); 4xx, connection failures and timeouts temporary (retried later with
 * exponential backoff, up to max_attempts).
 */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

typedef struct Slot {
	CURL *h;
	Message *m;
	StrBuf data;
	size_t off;
	struct curl_slist *rcpt;
	double started;
	char errbuf[CURL_ERROR_SIZE];
} Slot;

static CURLM *multi;
static Slot *slots;
static int nslots;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	Slot *s = arg;
	size_t want = size * nitems, left = s->data.len - s->off;
	if (want > left) want = left;
	memcpy(buf, s->data.data + s->off, want);
	s->off += want;
	return want;
}

void smtp_shutdown(void)
{
	for (int i = 0; i < nslots; i++) {
		if (slots[i].h) curl_easy_cleanup(slots[i].h);
		sb_free(&slots[i].data);
		curl_slist_free_all(slots[i].rcpt);
	}
	free(slots);
	slots = NULL;
	nslots = 0;
	if (multi) curl_multi_cleanup(multi);
	multi = NULL;
}

static void setup(const Config *cfg)
{
	if (multi && nslots == cfg->concurrency) return;
	smtp_shutdown();
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) cfg->concurrency);
	nslots = cfg->concurrency;
	slots = xmalloc(sizeof(Slot) * (size_t) nslots);
	memset(slots, 0, sizeof(Slot) * (size_t) nslots);
	for (int i = 0; i < nslots; i++) { slots[i].h = curl_easy_init(); sb_init(&slots[i].data); }
}

static void set_common(CURL *h, const Config *cfg)
{
	curl_easy_setopt(h, CURLOPT_URL, cfg->smtp_url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) cfg->smtp_timeout);
	long ssl = !strcmp(cfg->smtp_starttls, "require") ? CURLUSESSL_ALL : !strcmp(cfg->smtp_starttls, "try") ? CURLUSESSL_TRY : CURLUSESSL_NONE;
	curl_easy_setopt(h, CURLOPT_USE_SSL, ssl);
	if (*cfg->smtp_ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, cfg->smtp_ca_file);
	if (*cfg->smtp_username) {
		curl_easy_setopt(h, CURLOPT_USERNAME, cfg->smtp_username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->smtp_password);
	}
}

static bool start(Slot *s, const Config *cfg, DkimKey *dkim, Message *m)
{
	char err[256];
	sb_reset(&s->data);
	if (!email_build(&s->data, cfg, m, err, sizeof err)) {
		m->status = "failed";
		m->detail = xstrdup(err);
		return false;
	}
	if (dkim && !dkim_sign(&s->data, dkim, cfg->dkim_domain, cfg->dkim_selector, err, sizeof err))
		log_warning("message %lld: %s; sending it unsigned", m->id, err);
	s->m = m;
	s->off = 0;
	s->errbuf[0] = '\0';
	curl_slist_free_all(s->rcpt);
	char rcpt[512];
	snprintf(rcpt, sizeof rcpt, "<%s>", m->address);
	s->rcpt = curl_slist_append(NULL, rcpt);
	char from[512];
	snprintf(from, sizeof from, "<%s>", cfg->from_address);
	CURL *h = s->h;
	set_common(h, cfg);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, s->rcpt);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, s);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) s->data.len);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
	s->started = now_seconds();
	curl_multi_add_handle(multi, h);
	return true;
}

static double backoff(const Config *cfg, int attempts)
{
	double d = cfg->retry_base_seconds;
	for (int i = 1; i < attempts && d < cfg->retry_max_seconds; i++) d *= 2;
	if (d > cfg->retry_max_seconds) d = cfg->retry_max_seconds;
	return now_seconds() + d;
}

static void finish(Slot *s, const Config *cfg, CURLcode rc)
{
	Message *m = s->m;
	long code = 0;
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
	const char *e = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
	/* "RCPT failed: 550" and similar carry the reply code when the info does not */
	const char *num = strpbrk(e, "0123456789");
	if (rc != CURLE_OK && (code < 400 || code > 599) && num) {
		long c = strtol(num, NULL, 10);
		if (c >= 400 && c <= 599) code = c;
	}
	double dt = now_seconds() - s->started;
	pthread_mutex_lock(&metrics_lock);
	metrics.latency_sum[0] += dt;
	metrics.latency_count[0]++;
	pthread_mutex_unlock(&metrics_lock);
	char detail[CURL_ERROR_SIZE + 64];
	if (rc == CURLE_OK) {
		m->status = "sent";
		snprintf(detail, sizeof detail, "smtp %ld", code);
	} else if (code >= 500 && code <= 599) {
		m->status = "bounced";
		m->hard_bounce = code == 550 || code == 551 || code == 553;
		snprintf(detail, sizeof detail, "smtp %ld: %s", code, e);
	} else {
		m->status = "retry";
		m->retry_at = backoff(cfg, m->attempts);
		if (code >= 400) snprintf(detail, sizeof detail, "smtp %ld: %s", code, e);
		else snprintf(detail, sizeof detail, "smtp: %s", e);
	}
	m->detail = xstrdup(detail);
	log_debug("message %lld: %s (%s)", m->id, m->status, detail);
	curl_multi_remove_handle(multi, s->h);
	s->m = NULL;
}

void smtp_send_batch(const Config *cfg, DkimKey *dkim, Message *msgs, int n,
                     void (*progress)(Message *msgs, int n, int done_idx, void *arg), void *arg)
{
	setup(cfg);
	int next = 0, running = 0;
	for (;;) {
		for (int i = 0; i < nslots; i++) {
			while (!slots[i].m && next < n && !gateway_stopping) {
				Message *m = &msgs[next++];
				if (strcmp(m->channel, "email") != 0 || m->status) continue;
				if (start(&slots[i], cfg, dkim, m)) running++;
				else if (progress) progress(msgs, n, (int) (m - msgs), arg);
			}
		}
		if (running == 0 && (next >= n || gateway_stopping)) break;
		int still;
		curl_multi_perform(multi, &still);
		CURLMsg *cm;
		int left;
		while ((cm = curl_multi_info_read(multi, &left))) {
			if (cm->msg != CURLMSG_DONE) continue;
			for (int i = 0; i < nslots; i++) {
				if (slots[i].h == cm->easy_handle && slots[i].m) {
					Message *m = slots[i].m;
					finish(&slots[i], cfg, cm->data.result);
					running--;
					if (progress) progress(msgs, n, (int) (m - msgs), arg);
					break;
				}
			}
		}
		if (running > 0) curl_multi_poll(multi, NULL, 0, 200, NULL);
	}
}

bool smtp_check(const Config *cfg, char *err, size_t errlen)
{
	CURL *h = curl_easy_init();
	char eb[CURL_ERROR_SIZE] = "";
	set_common(h, cfg);
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, eb);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) snprintf(err, errlen, "SMTP server %s: %s", cfg->smtp_url, eb[0] ? eb : curl_easy_strerror(rc));
	return rc == CURLE_OK;
}
