/*
 * gateway.h: shared declarations of outreach-gateway, the delivery daemon (docs/delivery.md).
 *
 * Modules: main.c (options, signals, the send loop), config.c (file + environment),
 * util.c (buffers, logging, encodings), sign.c (HMAC-signed link tokens), db.c (libpq:
 * connect, LISTEN, claim, report), email.c (MIME, RFC 2047, link rewriting, open pixel),
 * dkim.c (DKIM rsa-sha256 relaxed/relaxed with OpenSSL), smtp.c (libcurl multi, several
 * connections), sms.c (HTTP providers), letter.c (print batch files), http.c
 * (libmicrohttpd endpoints, their own thread and PostgreSQL connection).
 */
#ifndef OUTREACH_GATEWAY_H
#define OUTREACH_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <pthread.h>
#include <libpq-fe.h>

#define GATEWAY_VERSION "0.3.0"

/* ---- util.c ---- */
typedef struct StrBuf { char *data; size_t len, cap; } StrBuf;
void sb_init(StrBuf *b);
void sb_free(StrBuf *b);
void sb_reset(StrBuf *b);
void sb_append(StrBuf *b, const char *s, size_t n);
void sb_puts(StrBuf *b, const char *s);
void sb_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);

enum { LOG_ERROR = 0, LOG_WARNING = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
extern int log_level;
void gw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) gw_log(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) gw_log(LOG_WARNING, __VA_ARGS__)
#define log_info(...) gw_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_level >= LOG_DEBUG) gw_log(LOG_DEBUG, __VA_ARGS__); } while (0)
int parse_log_level(const char *s);

double now_seconds(void);
void html_escape(StrBuf *b, const char *s, size_t n);
void html_unescape(StrBuf *b, const char *s, size_t n);
void url_encode(StrBuf *b, const char *s);
char *url_decode(const char *s, size_t n);
void base64_encode(StrBuf *b, const unsigned char *s, size_t n, bool url);
void json_string(StrBuf *b, const char *s);
void qp_encode(StrBuf *b, const char *s, size_t n);
/* form-urlencoded body or query: the decoded value of key, or NULL (malloc'd) */
char *form_value(const char *body, const char *key);

/* ---- config.c ---- */
typedef struct Config {
	char *path;
	char *conninfo;
	char *worker;
	int batch_size, concurrency, lease_seconds, max_attempts;
	int retry_base_seconds, retry_max_seconds, poll_seconds, report_every;
	int log_level;
	char *smtp_url, *smtp_username, *smtp_password, *smtp_starttls, *smtp_ca_file;
	int smtp_timeout;
	char *from_address, *from_name, *reply_to, *sender_domain;
	char *public_base_url, *link_secret;
	bool open_pixel, click_tracking;
	char *dkim_selector, *dkim_key_file, *dkim_domain;
	char *sms_provider, *sms_url, *sms_token, *sms_from, *sms_account, *sms_inbound_token;
	char *letters_dir;
	char *http_listen;
	char *pid_file;
	char *page_template, *organization;
} Config;

Config *config_load(const char *path, char *err, size_t errlen);
void config_free(Config *c);
void config_print_reference(void);

/* ---- sign.c ---- */
/* token = "<id>.<sig>", sig = base64url(HMAC-SHA256(secret, purpose ":" id [":" extra]))[:22] */
void sign_token(StrBuf *b, const char *secret, const char *purpose, const char *id, const char *extra);
bool verify_token(const char *secret, const char *purpose, const char *token, const char *extra, char *id_out, size_t id_len);

/* ---- db.c ---- */
typedef struct Message {
	long long id;
	char *channel, *message_class, *address, *subject, *body, *unsubscribe_url, *list_name, *contact_name;
	bool html, open_pixel, click_tracking;
	int attempts;
	long long contact_id;
	char *attachments;        /* packed by gateway_claim (85_delivery.sql): NULL or items joined by \x1e */
	/* result */
	const char *status;       /* sent, bounced, failed, retry */
	char *detail;
	bool hard_bounce;
	double retry_at;
	bool reported, inflight;
} Message;

PGconn *db_connect(const char *conninfo, bool listen);
bool db_ok(PGconn *c);
int db_claim(PGconn *c, const Config *cfg, Message **out);
bool db_report(PGconn *c, const Config *cfg, Message *msgs, int n);
/* asynchronous report: send now, collect later (one in flight per connection) */
int db_report_send(PGconn *c, const Config *cfg, Message *msgs, int n);
int db_report_collect(PGconn *c, Message *msgs, int n, bool wait);
bool db_renew(PGconn *c, const Config *cfg, Message *msgs, int n);
int db_release(PGconn *c, const char *worker);
double db_next_due(PGconn *c);
void message_free(Message *m);

/* ---- email.c ---- */
bool email_build(StrBuf *out, const Config *cfg, const Message *m, char *err, size_t errlen);
void html_to_text(StrBuf *b, const char *html);
void rfc2047_encode(StrBuf *b, const char *s, size_t header_len);
bool header_safe_address(const char *a);

/* ---- dkim.c ---- */
typedef struct DkimKey DkimKey;
DkimKey *dkim_load(const char *key_file, char *err, size_t errlen);
void dkim_free(DkimKey *k);
bool dkim_sign(StrBuf *msg, DkimKey *k, const char *domain, const char *selector, char *err, size_t errlen);

/* ---- smtp.c ---- */
void smtp_send_batch(const Config *cfg, DkimKey *dkim, Message *msgs, int n,
                     void (*progress)(Message *msgs, int n, int done_idx, void *arg), void *arg);
bool smtp_check(const Config *cfg, char *err, size_t errlen);
void smtp_shutdown(void);

/* ---- sms.c ---- */
void sms_send(const Config *cfg, Message *m);

/* ---- letter.c ---- */
void letters_write(const Config *cfg, Message *msgs, int n);

/* ---- http.c ---- */
bool http_start(const Config *cfg, char *err, size_t errlen);
void http_stop(void);

/* ---- metrics (main.c) ---- */
typedef struct Metrics {
	unsigned long sent[3], failed[3], bounced[3], retried[3];
	unsigned long claimed, db_reconnects, opens, clicks, unsubscribes, forged;
	double latency_sum[3];
	unsigned long latency_count[3];
	double started_at, last_loop_at;
} Metrics;
extern Metrics metrics;
extern pthread_mutex_t metrics_lock;
int channel_index(const char *channel);
extern const char *const channel_names[3];

/* the configuration shared with the HTTP thread; read under config_lock */
#include <signal.h>
extern volatile sig_atomic_t gateway_stopping;
extern Config *current_config;
extern pthread_rwlock_t config_lock;

#endif
