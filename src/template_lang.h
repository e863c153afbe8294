/*
 * template_lang.h: the template language of outreach 0.3 (sections, loops, filters, content
 * blocks), see template_lang.c and docs/templates.md.  render.c hands a template to it when
 * the template uses anything beyond the 0.2 token syntax.
 */
#ifndef TEMPLATE_LANG_H
#define TEMPLATE_LANG_H

#include "postgres.h"
#include "nodes/pg_list.h"

/* Bounds: a template cannot make a render hang or grow without limit. */
#define TL_MAX_DEPTH		16		/* nested sections (if/unless/each) */
#define TL_MAX_BLOCK_DEPTH	4		/* content blocks including content blocks */
#define TL_MAX_ITEMS		50		/* items of one loop */
#define TL_MAX_OUTPUT		(256 * 1024)	/* bytes of one rendered text */
#define TL_MAX_STEPS		200000	/* node evaluations of one render */

/* Does the template use any 0.3 construct ({{#...}}, {{/...}}, {{else}}, {{> ...}}, a filter
 * other than default)?  Plain templates keep the 0.2 code path. */
extern bool tl_is_extended(const char *s, int len);

/* Check a template at save time; returns the distinct token paths used (char *), loop item
 * paths written list.#.field.  allowed is the set of allowed paths (loop item fields as
 * list.#.field).  Errors carry the part name and the character position. */
extern List *tl_compile(const char *part, const char *s, int len, char **allowed, int nallowed);

/* Render a template: keys/vals as for outreach._render (loop lists as list.# = count and
 * list.<i>.field, i from 1). */
extern char *tl_render(const char *s, int len, bool html, char **keys, char **vals, int nkeys, int *outlen);

#endif							/* TEMPLATE_LANG_H */
