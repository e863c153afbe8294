/*
 * letter.c: due letters become one print batch file per batch, a CSV (RFC 4180, UTF-8,
 * CRLF) that mail houses import: message_id, recipient, address_line_1..4, text (HTML
 * letters as plain text).  Written to a temporary name, fsync'ed and renamed, so a file
 * that exists is complete; the letters are then reported as sent.  A crash between the
 * rename and the report leaves a complete file whose letters are claimed again later:
 * mail houses de-duplicate on message_id (docs/delivery.md).
 */
#include "gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void csv_field(StrBuf *b, const char *s, bool last)
{
	sb_append(b, "\"", 1);
	for (const char *p = s ? s : ""; *p; p++) {
		if (*p == '"') sb_append(b, "\"", 1);
		sb_append(b, p, 1);
	}
	sb_puts(b, last ? "\"\r\n" : "\",");
}

void letters_write(const Config *cfg, Message *msgs, int n)
{
	int count = 0;
	long long first = 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(msgs[i].channel, "letter") && !msgs[i].status) { if (!count) first = msgs[i].id; count++; }
	if (!count) return;
	if (!*cfg->letters_dir) {
		for (int i = 0; i < n; i++)
			if (!strcmp(msgs[i].channel, "letter") && !msgs[i].status) {
				msgs[i].status = "retry";
				msgs[i].retry_at = now_seconds() + cfg->retry_max_seconds;
				msgs[i].detail = xstrdup("this gateway has no letters_dir");
			}
		return;
	}
	StrBuf csv;
	sb_init(&csv);
	sb_puts(&csv, "message_id,recipient,address_line_1,address_line_2,address_line_3,address_line_4,text\r\n");
	for (int i = 0; i < n; i++) {
		Message *m = &msgs[i];
		if (strcmp(m->channel, "letter") || m->status) continue;
		char ids[32];
		snprintf(ids, sizeof ids, "%lld", m->id);
		csv_field(&csv, ids, false);
		char *addr = xstrdup(m->address ? m->address : "");
		char *save = NULL, *line = strtok_r(addr, "\n", &save);
		for (int k = 0; k < 5; k++) {
			csv_field(&csv, line ? line : "", false);
			line = line ? strtok_r(NULL, "\n", &save) : NULL;
		}
		free(addr);
		if (m->html) {
			StrBuf t; sb_init(&t); sb_append(&t, "", 0);
			html_to_text(&t, m->body ? m->body : "");
			csv_field(&csv, t.data, true);
			sb_free(&t);
		} else csv_field(&csv, m->body, true);
	}
	char ts[32], path[4096], tmp[4200];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(path, sizeof path, "%s/letters-%s-%s-%lld.csv", cfg->letters_dir, ts, cfg->worker, first);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	const char *err = NULL;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0) err = strerror(errno);
	else {
		size_t off = 0;
		while (off < csv.len) {
			ssize_t w = write(fd, csv.data + off, csv.len - off);
			if (w < 0) { err = strerror(errno); break; }
			off += (size_t) w;
		}
		if (!err && fsync(fd) != 0) err = strerror(errno);
		close(fd);
		if (!err && rename(tmp, path) != 0) err = strerror(errno);
	}
	for (int i = 0; i < n; i++) {
		Message *m = &msgs[i];
		if (strcmp(m->channel, "letter") || m->status) continue;
		char detail[4200];
		if (err) {
			m->status = "retry";
			m->retry_at = now_seconds() + cfg->retry_base_seconds;
			snprintf(detail, sizeof detail, "print batch %s: %s", path, err);
		} else {
			m->status = "sent";
			snprintf(detail, sizeof detail, "print batch %s", path);
		}
		m->detail = xstrdup(detail);
	}
	if (err) log_error("could not write print batch %s: %s", path, err);
	else log_info("wrote print batch %s (%d letter(s))", path, count);
	sb_free(&csv);
}
