/*
 * template_lang.c: the template language of outreach 0.3 (docs/templates.md).
 *
 *   {{path}}  {{path | filter | filter: arg}}           values with filters
 *   {{#if cond}} ... {{else if cond}} ... {{else}} ... {{/if}}
 *   {{#unless cond}} ... {{else}} ... {{/unless}}
 *   {{#each list as item}} ... {{item.field}} ... {{else}} (empty) {{/each}}
 *   {{> block}}                                         a content block (outreach.content_block)
 *
 * A condition is a path (present: not NULL and not empty) or path op literal with op one of
 * = != < > <= >= and literal a quoted string or a number (numbers compare numerically when
 * both sides are numbers).  Filters: upcase, downcase, capitalize, date: 'format', truncate: n,
 * escape, url_encode, number, default: 'text'.
 *
 * A template is parsed into a tree (content blocks inlined, fetched with SPI), checked against
 * the allowed paths (tl_compile) or evaluated (tl_render).  Every cost is bounded: nesting
 * depth, blocks in blocks, items per loop, output size and evaluation steps (template_lang.h).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/formatting.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "template_lang.h"

typedef enum NodeKind
{
	N_TEXT,
	N_VAR,
	N_IF,
	N_EACH
} NodeKind;

typedef enum FilterKind
{
	F_DEFAULT,
	F_UPCASE,
	F_DOWNCASE,
	F_CAPITALIZE,
	F_DATE,
	F_TRUNCATE,
	F_ESCAPE,
	F_URL_ENCODE,
	F_NUMBER
} FilterKind;

static const char *const filter_names[] = {
	"default", "upcase", "downcase", "capitalize", "date", "truncate", "escape", "url_encode", "number"
};
/* does the filter take an argument: 1 required, 0 none, 2 optional */
static const int filter_arg[] = {1, 0, 0, 0, 1, 1, 0, 0, 2};

typedef struct Filter
{
	FilterKind	kind;
	char	   *arg;			/* string argument (default, date) */
	int			num;			/* numeric argument (truncate, number) */
} Filter;

typedef enum CondOp
{
	OP_PRESENT,
	OP_EQ,
	OP_NE,
	OP_LT,
	OP_GT,
	OP_LE,
	OP_GE
} CondOp;

typedef struct Cond
{
	char	   *path;
	CondOp		op;
	char	   *lit;
} Cond;

typedef struct Branch
{
	Cond	   *cond;			/* NULL: the else branch */
	bool		negate;			/* unless */
	List	   *body;
} Branch;

typedef struct TNode
{
	NodeKind	kind;
	const char *text;			/* N_TEXT */
	int			len;
	char	   *path;			/* N_VAR, N_EACH: as written */
	List	   *filters;		/* N_VAR */
	List	   *branches;		/* N_IF */
	char	   *alias;			/* N_EACH */
	List	   *body;			/* N_EACH */
	List	   *else_body;		/* N_EACH: when the list is empty */
} TNode;

/* A tag between {{ and }}. */
typedef enum TagKind
{
	T_VAR,
	T_OPEN,						/* {{#if / #unless / #each */
	T_ELSE,						/* {{else}} or {{else if cond}} */
	T_CLOSE,					/* {{/if}} ... */
	T_BLOCK						/* {{> name}} */
} TagKind;

typedef struct Parser
{
	const char *part;			/* "body of template "x"" or "content block "x"" */
	const char *s;
	int			len;
	int			pos;
	int			depth;			/* open sections, counting enclosing blocks' */
	List	   *blocks;			/* names of the content blocks being inlined */
} Parser;

/* 1-based character position of byte offset off (multibyte-aware). */
static int
cpos(Parser *p, int off)
{
	return pg_mbstrlen_with_len(p->s, Min(off, p->len)) + 1;
}

static void
syntax_error(Parser *p, int off, const char *expected, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("syntax error in template %s at character %d", p->part, cpos(p, off)),
			 errdetail("Expected %s.", expected),
			 errhint("%s", hint ? hint : "See docs/templates.md for the template language.")));
}

static inline bool
ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool
ident_char(char c)
{
	return ident_start(c) || (c >= '0' && c <= '9');
}

static void
skip_ws(Parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

/* an identifier (no dots) at pos, or NULL */
static char *
read_word(Parser *p)
{
	int			st = p->pos;

	if (p->pos >= p->len || !ident_start(p->s[p->pos]))
		return NULL;
	while (p->pos < p->len && ident_char(p->s[p->pos]))
		p->pos++;
	return pnstrdup(p->s + st, p->pos - st);
}

static bool
at_word(Parser *p, const char *w)
{
	int			l = strlen(w);

	return p->pos + l <= p->len && strncmp(p->s + p->pos, w, l) == 0 &&
		(p->pos + l == p->len || !ident_char(p->s[p->pos + l]));
}

static char *
read_path(Parser *p, const char *what)
{
	int			st = p->pos;

	for (;;)
	{
		if (p->pos >= p->len || !ident_start(p->s[p->pos]))
			syntax_error(p, p->pos, what, NULL);
		while (p->pos < p->len && ident_char(p->s[p->pos]))
			p->pos++;
		if (p->pos < p->len && p->s[p->pos] == '.')
		{
			p->pos++;
			continue;
		}
		break;
	}
	return pnstrdup(p->s + st, p->pos - st);
}

static char *
read_quoted(Parser *p, const char *what)
{
	char		quote;
	StringInfoData b;

	if (p->pos >= p->len || (p->s[p->pos] != '\'' && p->s[p->pos] != '"'))
		syntax_error(p, p->pos, what, NULL);
	quote = p->s[p->pos++];
	initStringInfo(&b);
	for (;;)
	{
		if (p->pos >= p->len)
			syntax_error(p, p->pos, "the closing quote", NULL);
		if (p->s[p->pos] == quote)
		{
			if (p->pos + 1 < p->len && p->s[p->pos + 1] == quote)
			{
				appendStringInfoChar(&b, quote);
				p->pos += 2;
				continue;
			}
			p->pos++;
			break;
		}
		appendStringInfoChar(&b, p->s[p->pos++]);
	}
	return b.data;
}

/* a number literal (optional sign, digits, optional fraction) or NULL */
static char *
read_number(Parser *p)
{
	int			st = p->pos;

	if (p->pos < p->len && (p->s[p->pos] == '-' || p->s[p->pos] == '+'))
		p->pos++;
	if (p->pos >= p->len || !isdigit((unsigned char) p->s[p->pos]))
	{
		p->pos = st;
		return NULL;
	}
	while (p->pos < p->len && isdigit((unsigned char) p->s[p->pos]))
		p->pos++;
	if (p->pos + 1 < p->len && p->s[p->pos] == '.' && isdigit((unsigned char) p->s[p->pos + 1]))
	{
		p->pos++;
		while (p->pos < p->len && isdigit((unsigned char) p->s[p->pos]))
			p->pos++;
	}
	return pnstrdup(p->s + st, p->pos - st);
}

static void
expect_close(Parser *p)
{
	skip_ws(p);
	if (p->pos + 1 >= p->len || p->s[p->pos] != '}' || p->s[p->pos + 1] != '}')
		syntax_error(p, p->pos, "\"}}\" to close the tag", NULL);
	p->pos += 2;
}

static const char *const date_directives = "YymdeBbAaHIMSpjZ%";

static void
check_date_format(Parser *p, int off, const char *fmt)
{
	if (strcmp(fmt, "long") == 0 || strcmp(fmt, "short") == 0 || strcmp(fmt, "iso") == 0)
		return;
	for (const char *c = fmt; *c; c++)
		if (*c == '%' && (c[1] == '\0' || strchr(date_directives, c[1]) == NULL))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("unknown date directive \"%%%c\" in template %s at character %d",
							c[1] ? c[1] : ' ', p->part, cpos(p, off)),
					 errdetail("The date filter knows %%Y %%y %%m %%d %%e %%B %%b %%A %%a %%H %%I %%M %%S %%p %%j %%Z and %%%%, or the names long, short and iso."),
					 errhint("Write e.g. {{contact.birthdate | date: '%%e %%B %%Y'}}.")));
		else if (*c == '%')
			c++;
}

static List *
parse_filters(Parser *p)
{
	List	   *filters = NIL;

	for (;;)
	{
		int			fstart;
		char	   *name;
		Filter	   *f;
		int			k;

		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != '|')
			break;
		p->pos++;
		skip_ws(p);
		fstart = p->pos;
		name = read_word(p);
		if (name == NULL)
			syntax_error(p, p->pos, "a filter name after \"|\"", NULL);
		for (k = 0; k < lengthof(filter_names); k++)
			if (strcmp(filter_names[k], name) == 0)
				break;
		if (k == lengthof(filter_names))
		{
			const char *best = NULL;
			int			best_d = 3;

			for (int j = 0; j < lengthof(filter_names); j++)
			{
				int			d = varstr_levenshtein(name, strlen(name), filter_names[j], strlen(filter_names[j]), 1, 1, 1, true);

				if (d < best_d)
				{
					best_d = d;
					best = filter_names[j];
				}
			}
			/* names other template languages use */
			if (strcmp(name, "upper") == 0 || strcmp(name, "uppercase") == 0)
				best = "upcase";
			else if (strcmp(name, "lower") == 0 || strcmp(name, "lowercase") == 0)
				best = "downcase";
			else if (strcmp(name, "urlencode") == 0 || strcmp(name, "url_escape") == 0)
				best = "url_encode";
			else if (strcmp(name, "format_date") == 0 || strcmp(name, "strftime") == 0)
				best = "date";
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("unknown template filter \"%s\" in %s at character %d", name, p->part, cpos(p, fstart)),
					 errdetail("The filters are default, upcase, downcase, capitalize, date, truncate, escape, url_encode and number."),
					 best ? errhint("Did you mean \"%s\"?", best) : errhint("See docs/templates.md for what each filter does.")));
		}
		f = palloc0(sizeof(Filter));
		f->kind = (FilterKind) k;
		f->num = -1;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ':')
		{
			int			astart;

			if (filter_arg[k] == 0)
				syntax_error(p, p->pos, psprintf("\"|\" or \"}}\": the filter %s takes no argument", name), NULL);
			p->pos++;
			skip_ws(p);
			astart = p->pos;
			if (f->kind == F_TRUNCATE || f->kind == F_NUMBER)
			{
				char	   *n = read_number(p);

				if (n == NULL || strchr(n, '.') || n[0] == '-' || atoi(n) < (f->kind == F_TRUNCATE ? 1 : 0) || strlen(n) > 6)
					syntax_error(p, astart, f->kind == F_TRUNCATE ? "a positive whole number of characters, e.g. truncate: 40"
								 : "a number of decimals from 0, e.g. number: 2", NULL);
				f->num = atoi(n);
			}
			else
			{
				f->arg = read_quoted(p, f->kind == F_DATE ? "a quoted date format, e.g. date: '%e %B %Y'"
									 : "a quoted default value, e.g. 'there'");
				if (f->kind == F_DATE)
					check_date_format(p, astart, f->arg);
			}
		}
		else if (filter_arg[k] == 1)
			syntax_error(p, p->pos, psprintf("\":\" and an argument after \"%s\"", name), NULL);
		filters = lappend(filters, f);
	}
	return filters;
}

static Cond *
parse_cond(Parser *p)
{
	Cond	   *c = palloc0(sizeof(Cond));

	skip_ws(p);
	c->path = read_path(p, "a token name to test, e.g. contact.first_name");
	skip_ws(p);
	c->op = OP_PRESENT;
	if (p->pos < p->len)
	{
		char		a = p->s[p->pos];
		char		b = p->pos + 1 < p->len ? p->s[p->pos + 1] : '\0';

		if (a == '=' && b == '=')
			c->op = OP_EQ, p->pos += 2;
		else if (a == '=')
			c->op = OP_EQ, p->pos += 1;
		else if (a == '!' && b == '=')
			c->op = OP_NE, p->pos += 2;
		else if (a == '<' && b == '=')
			c->op = OP_LE, p->pos += 2;
		else if (a == '>' && b == '=')
			c->op = OP_GE, p->pos += 2;
		else if (a == '<' && b == '>')
			c->op = OP_NE, p->pos += 2;
		else if (a == '<')
			c->op = OP_LT, p->pos += 1;
		else if (a == '>')
			c->op = OP_GT, p->pos += 1;
	}
	if (c->op != OP_PRESENT)
	{
		skip_ws(p);
		c->lit = read_number(p);
		if (c->lit == NULL)
			c->lit = read_quoted(p, "a quoted string or a number to compare with");
	}
	return c;
}

static List *parse_seq(Parser *p, TagKind *stop, char **stop_word, int *stop_pos);

static char *lookup_block(const char *name);

/* {{> name}}: parse the block's body in place */
static List *
parse_block(Parser *p, int tag_start)
{
	char	   *name;
	char	   *body;
	Parser		sub;
	TagKind		stop;
	char	   *stop_word;
	int			stop_pos;
	List	   *nodes;
	ListCell   *lc;

	skip_ws(p);
	{
		int			st = p->pos;

		while (p->pos < p->len && (ident_char(p->s[p->pos]) || p->s[p->pos] == '-' || p->s[p->pos] == '.'))
			p->pos++;
		if (p->pos == st)
			syntax_error(p, p->pos, "a content block name after \"{{>\"", "Content blocks are included with {{> footer}}.");
		name = pnstrdup(p->s + st, p->pos - st);
	}
	expect_close(p);
	foreach(lc, p->blocks)
		if (strcmp((char *) lfirst(lc), name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_RECURSION),
					 errmsg("content block \"%s\" includes itself in template %s at character %d", name, p->part, cpos(p, tag_start)),
					 errhint("A content block may include other blocks but not, directly or indirectly, itself.")));
	if (list_length(p->blocks) >= TL_MAX_BLOCK_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
				 errmsg("content blocks nested more than %d deep in template %s at character %d", TL_MAX_BLOCK_DEPTH, p->part, cpos(p, tag_start)),
				 errhint("Include the blocks side by side rather than inside each other.")));
	body = lookup_block(name);
	if (body == NULL)
	{
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown content block \"%s\" in template %s at character %d", name, p->part, cpos(p, tag_start)),
				 errhint("Create it with outreach.create_content_block('%s', '...'); outreach.content_block lists the blocks.", name)));
	}
	sub.part = psprintf("content block \"%s\" (included by %s)", name, p->part);
	sub.s = body;
	sub.len = strlen(body);
	sub.pos = 0;
	sub.depth = p->depth;
	sub.blocks = lappend(list_copy(p->blocks), name);
	nodes = parse_seq(&sub, &stop, &stop_word, &stop_pos);
	if (stop != T_VAR)			/* T_VAR marks the end of the text */
		syntax_error(&sub, stop_pos, psprintf("no {{%s%s}} here: it closes nothing opened in this block",
											  stop == T_ELSE ? "" : "/", stop_word), "A content block must balance its own sections.");
	return nodes;
}

/*
 * Parse nodes until the end of the text (stop = T_VAR) or a tag that ends the enclosing
 * section: {{else ...}} (stop = T_ELSE, stop_word "else", p->pos just past "else") or
 * {{/word}} (stop = T_CLOSE, closed already).
 */
static List *
parse_seq(Parser *p, TagKind *stop, char **stop_word, int *stop_pos)
{
	List	   *nodes = NIL;

	for (;;)
	{
		int			t = -1;
		int			tag;
		TNode	   *n;

		for (int i = p->pos; i + 1 < p->len; i++)
			if (p->s[i] == '{' && p->s[i + 1] == '{')
			{
				t = i;
				break;
			}
		if (t < 0)
		{
			if (p->pos < p->len)
			{
				n = palloc0(sizeof(TNode));
				n->kind = N_TEXT;
				n->text = p->s + p->pos;
				n->len = p->len - p->pos;
				nodes = lappend(nodes, n);
			}
			p->pos = p->len;
			*stop = T_VAR;
			*stop_pos = p->len;
			return nodes;
		}
		if (t > p->pos)
		{
			n = palloc0(sizeof(TNode));
			n->kind = N_TEXT;
			n->text = p->s + p->pos;
			n->len = t - p->pos;
			nodes = lappend(nodes, n);
		}
		/* the tag must be closed before the text ends */
		{
			bool		closed = false;

			for (int j = t + 2; j + 1 < p->len; j++)
				if (p->s[j] == '}' && p->s[j + 1] == '}')
				{
					closed = true;
					break;
				}
			if (!closed)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("unterminated template token in %s at character %d", p->part, cpos(p, t)),
						 errdetail("A token opened with \"{{\" is not closed with \"}}\"."),
						 errhint("Close the token, e.g. {{contact.first_name}}.")));
		}
		tag = t;
		p->pos = t + 2;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == '#')
		{
			char	   *kw;

			p->pos++;
			kw = read_word(p);
			if (kw == NULL || (strcmp(kw, "if") != 0 && strcmp(kw, "unless") != 0 && strcmp(kw, "each") != 0))
				syntax_error(p, p->pos, "if, unless or each after \"{{#\"", "Sections are {{#if ...}}, {{#unless ...}} and {{#each ...}}.");
			if (++p->depth > TL_MAX_DEPTH)
				ereport(ERROR,
						(errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
						 errmsg("sections nested more than %d deep in template %s at character %d", TL_MAX_DEPTH, p->part, cpos(p, tag)),
						 errhint("Flatten the template: combine conditions or move parts into content blocks.")));
			n = palloc0(sizeof(TNode));
			if (strcmp(kw, "each") == 0)
			{
				TagKind		st;
				char	   *sw;
				int			sp;

				n->kind = N_EACH;
				skip_ws(p);
				n->path = read_path(p, "a list to loop over, e.g. registration.sessions");
				skip_ws(p);
				n->alias = "this";
				if (at_word(p, "as"))
				{
					p->pos += 2;
					skip_ws(p);
					n->alias = read_word(p);
					if (n->alias == NULL)
						syntax_error(p, p->pos, "a name for each item after \"as\"", "Write {{#each registration.sessions as session}}.");
				}
				expect_close(p);
				n->body = parse_seq(p, &st, &sw, &sp);
				if (st == T_ELSE)
				{
					expect_close(p);
					n->else_body = parse_seq(p, &st, &sw, &sp);
					if (st == T_ELSE)
						syntax_error(p, sp, "{{/each}}: a loop has one {{else}} at most", NULL);
				}
				if (st == T_VAR)
					ereport(ERROR,
							(errcode(ERRCODE_SYNTAX_ERROR),
							 errmsg("unclosed section {{#each}} in template %s at character %d", p->part, cpos(p, tag)),
							 errhint("Close it with {{/each}}.")));
				if (strcmp(sw, "each") != 0)
					syntax_error(p, sp, psprintf("{{/each}} (the {{#each}} at character %d is still open), not {{/%s}}", cpos(p, tag), sw), NULL);
			}
			else
			{
				bool		negate = strcmp(kw, "unless") == 0;
				Branch	   *b = palloc0(sizeof(Branch));
				TagKind		st;
				char	   *sw;
				int			sp;
				bool		had_else = false;

				n->kind = N_IF;
				b->cond = parse_cond(p);
				b->negate = negate;
				expect_close(p);
				b->body = parse_seq(p, &st, &sw, &sp);
				n->branches = list_make1(b);
				while (st == T_ELSE)
				{
					if (had_else)
						syntax_error(p, sp, psprintf("{{/%s}}: {{else}} must be the last branch", kw), NULL);
					b = palloc0(sizeof(Branch));
					skip_ws(p);
					if (at_word(p, "if"))
					{
						if (negate)
							syntax_error(p, p->pos, "\"}}\": {{#unless}} has no {{else if}}", "Use {{#if}} for several branches.");
						p->pos += 2;
						b->cond = parse_cond(p);
					}
					else
						had_else = true;
					expect_close(p);
					b->body = parse_seq(p, &st, &sw, &sp);
					n->branches = lappend(n->branches, b);
				}
				if (st == T_VAR)
					ereport(ERROR,
							(errcode(ERRCODE_SYNTAX_ERROR),
							 errmsg("unclosed section {{#%s}} in template %s at character %d", kw, p->part, cpos(p, tag)),
							 errhint("Close it with {{/%s}}.", kw)));
				if (strcmp(sw, kw) != 0)
					syntax_error(p, sp, psprintf("{{/%s}} (the {{#%s}} at character %d is still open), not {{/%s}}", kw, kw, cpos(p, tag), sw), NULL);
			}
			p->depth--;
			nodes = lappend(nodes, n);
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '/')
		{
			char	   *kw;

			p->pos++;
			skip_ws(p);
			kw = read_word(p);
			if (kw == NULL || (strcmp(kw, "if") != 0 && strcmp(kw, "unless") != 0 && strcmp(kw, "each") != 0))
				syntax_error(p, p->pos, "if, unless or each after \"{{/\"", NULL);
			expect_close(p);
			if (p->depth == 0)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("{{/%s}} closes no open section in template %s at character %d", kw, p->part, cpos(p, tag)),
						 errhint("Remove it, or open the section with {{#%s ...}} before it.", kw)));
			*stop = T_CLOSE;
			*stop_word = kw;
			*stop_pos = tag;
			return nodes;
		}
		if (p->pos < p->len && p->s[p->pos] == '>')
		{
			p->pos++;
			nodes = list_concat(nodes, parse_block(p, tag));
			continue;
		}
		if (at_word(p, "else"))
		{
			p->pos += 4;
			if (p->depth == 0)
				ereport(ERROR,
						(errcode(ERRCODE_SYNTAX_ERROR),
						 errmsg("{{else}} outside a section in template %s at character %d", p->part, cpos(p, tag)),
						 errhint("{{else}} belongs inside {{#if}}, {{#unless}} or {{#each}}.")));
			*stop = T_ELSE;
			*stop_word = "else";
			*stop_pos = tag;
			return nodes;
		}
		n = palloc0(sizeof(TNode));
		n->kind = N_VAR;
		n->path = read_path(p, "a token name such as contact.first_name");
		n->filters = parse_filters(p);
		expect_close(p);
		nodes = lappend(nodes, n);
	}
}

static List *
parse_template(const char *part, const char *s, int len)
{
	Parser		p;
	TagKind		stop;
	char	   *sw;
	int			sp;
	List	   *nodes;

	p.part = part;
	p.s = s;
	p.len = len;
	p.pos = 0;
	p.depth = 0;
	p.blocks = NIL;
	nodes = parse_seq(&p, &stop, &sw, &sp);
	Assert(stop == T_VAR);
	return nodes;
}

/* The body of a content block, or NULL. */
static char *
lookup_block(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char	   *result = NULL;
	MemoryContext outer = CurrentMemoryContext;
	int			rc;

	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("SELECT b.body FROM outreach.content_block b WHERE b.name = $1",
							   1, argtypes, args, NULL, true, 1);
	if (rc == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			MemoryContext spi = MemoryContextSwitchTo(outer);

			result = TextDatumGetCString(d);
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	return result;
}

bool
tl_is_extended(const char *s, int len)
{
	for (int i = 0; i + 1 < len; i++)
	{
		int			j;

		if (s[i] != '{' || s[i + 1] != '{')
			continue;
		j = i + 2;
		while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'))
			j++;
		if (j < len && (s[j] == '#' || s[j] == '/' || s[j] == '>'))
			return true;
		if (j + 4 <= len && strncmp(s + j, "else", 4) == 0 && (j + 4 == len || !ident_char(s[j + 4])))
			return true;
		/* a filter other than a single default */
		{
			int			bars = 0;

			for (; j + 1 < len && !(s[j] == '}' && s[j + 1] == '}'); j++)
			{
				if (s[j] == '\'' || s[j] == '"')
				{
					char		q = s[j++];

					while (j < len && s[j] != q)
						j++;
					continue;
				}
				if (s[j] == '|')
				{
					int			k = j + 1;

					while (k < len && (s[k] == ' ' || s[k] == '\t'))
						k++;
					if (++bars > 1 || !(k + 7 <= len && strncmp(s + k, "default", 7) == 0 &&
										(k + 7 == len || !ident_char(s[k + 7]))))
						return true;
				}
			}
		}
	}
	return false;
}

/* --- compile ------------------------------------------------------------------------ */

typedef struct Scope
{
	const char *alias;
	const char *list;			/* the concrete list path (compile: with # for outer items) */
	int			index;			/* render: 1-based item number */
} Scope;

/* A path as written, rewritten through the loop scopes (innermost first). */
static char *
resolve(const char *path, Scope *scopes, int nscopes, bool compile)
{
	for (int i = nscopes - 1; i >= 0; i--)
	{
		int			al = strlen(scopes[i].alias);

		if (strncmp(path, scopes[i].alias, al) == 0 && path[al] == '.')
			return compile ? psprintf("%s.#.%s", scopes[i].list, path + al + 1)
				: psprintf("%s.%d.%s", scopes[i].list, scopes[i].index, path + al + 1);
		if (strcmp(path, scopes[i].alias) == 0)
			return compile ? psprintf("%s.#", scopes[i].list) : psprintf("%s.%d", scopes[i].list, scopes[i].index);
	}
	return (char *) path;
}

typedef struct Compiler
{
	const char *part;
	const char *s;
	char	  **allowed;
	int			nallowed;
	List	   *paths;
	Scope		scopes[TL_MAX_DEPTH + 1];
	int			nscopes;
	int			conditional;	/* inside if/unless/each: may not render */
} Compiler;

static void
unknown_path(Compiler *c, const char *path, bool list)
{
	const char *best = NULL;
	int			best_d = PG_INT32_MAX;
	int			plen = strlen(path);

	for (int k = 0; k < c->nallowed; k++)
	{
		int			d;

		if (!c->allowed[k])
			continue;
		d = varstr_levenshtein_less_equal(path, plen, c->allowed[k], strlen(c->allowed[k]), 1, 1, 1, Max(3, plen / 3), true);
		if (d < best_d)
		{
			best_d = d;
			best = c->allowed[k];
		}
	}
	if (best && best_d > Max(3, plen / 3))
		best = NULL;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg(list ? "unknown template list \"%s\" in %s" : "unknown template token \"%s\" in %s", path, c->part),
			 errdetail(list ? "Loops go over registration.sessions and contact.registrations (outreach.template_tokens() lists their fields as list.#.field)."
					   : "Tokens are contact.<column>, contact.account.<column>, unsubscribe_url, sender.postal_address, event.*, registration.* and the fields of a loop's item."),
			 best ? errhint("Did you mean \"%s\"?", best) : 0));
}

static void
use_path(Compiler *c, const char *written)
{
	char	   *path = resolve(written, c->scopes, c->nscopes, true);
	bool		known = false;
	ListCell   *lc;

	for (int k = 0; k < c->nallowed && !known; k++)
		known = c->allowed[k] && strcmp(c->allowed[k], path) == 0;
	if (!known)
		unknown_path(c, path, false);
	/*
	 * The links the law requires in marketing email (checked by _template_validate on the
	 * returned tokens) count only where they always render, not inside a section.
	 */
	if (c->conditional > 0 && (strcmp(path, "unsubscribe_url") == 0 || strcmp(path, "sender.postal_address") == 0))
		return;
	foreach(lc, c->paths)
		if (strcmp((char *) lfirst(lc), path) == 0)
			return;
	c->paths = lappend(c->paths, path);
}

static void
compile_nodes(Compiler *c, List *nodes)
{
	ListCell   *lc;

	foreach(lc, nodes)
	{
		TNode	   *n = lfirst(lc);

		switch (n->kind)
		{
			case N_TEXT:
				break;
			case N_VAR:
				use_path(c, n->path);
				break;
			case N_IF:
				{
					ListCell   *bc;

					foreach(bc, n->branches)
					{
						Branch	   *b = lfirst(bc);

						if (b->cond)
							use_path(c, b->cond->path);
						c->conditional++;
						compile_nodes(c, b->body);
						c->conditional--;
					}
					break;
				}
			case N_EACH:
				{
					char	   *list = resolve(n->path, c->scopes, c->nscopes, true);
					char	   *prefix = psprintf("%s.#.", list);
					bool		known = false;

					for (int k = 0; k < c->nallowed && !known; k++)
						known = c->allowed[k] && strncmp(c->allowed[k], prefix, strlen(prefix)) == 0;
					if (!known)
						unknown_path(c, list, true);
					c->scopes[c->nscopes].alias = n->alias;
					c->scopes[c->nscopes].list = list;
					c->nscopes++;
					c->conditional++;
					compile_nodes(c, n->body);
					c->nscopes--;
					compile_nodes(c, n->else_body);
					c->conditional--;
					break;
				}
		}
	}
}

List *
tl_compile(const char *part, const char *s, int len, char **allowed, int nallowed)
{
	Compiler	c;
	List	   *nodes = parse_template(part, s, len);

	memset(&c, 0, sizeof(c));
	c.part = part;
	c.s = s;
	c.allowed = allowed;
	c.nallowed = nallowed;
	compile_nodes(&c, nodes);
	return c.paths;
}

/* --- render ------------------------------------------------------------------------- */

typedef struct Renderer
{
	bool		html;
	char	  **keys;
	char	  **vals;
	int			nkeys;
	StringInfoData out;
	long		steps;
	Scope		scopes[TL_MAX_DEPTH + 1];
	int			nscopes;
	const char *lang;			/* primary language subtag, lower case, or "" */
	const char *tz;
} Renderer;

static const char *
lookup(Renderer *r, const char *path)
{
	for (int k = 0; k < r->nkeys; k++)
		if (r->keys[k] && strcmp(r->keys[k], path) == 0)
			return r->vals[k];
	return NULL;
}

static void
append_escaped(StringInfo buf, const char *v)
{
	for (; *v; v++)
	{
		switch (*v)
		{
			case '&':
				appendStringInfoString(buf, "&amp;");
				break;
			case '<':
				appendStringInfoString(buf, "&lt;");
				break;
			case '>':
				appendStringInfoString(buf, "&gt;");
				break;
			case '"':
				appendStringInfoString(buf, "&quot;");
				break;
			case '\'':
				appendStringInfoString(buf, "&#39;");
				break;
			default:
				appendStringInfoChar(buf, *v);
		}
	}
}

/* month and day names per language (UTF-8) */
typedef struct LangNames
{
	const char *lang;
	const char *months[12];
	const char *mon[12];
	const char *days[7];		/* Sunday first */
	const char *dy[7];
	const char *long_fmt;
	const char *short_fmt;
	char		thousands;		/* ' ' stands for a narrow no-break space */
	char		decimal;
} LangNames;

static const LangNames lang_names[] = {
	{"en", {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
		{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
		{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}, "%B %e, %Y", "%m/%d/%Y", ',', '.'},
	{"es", {"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"},
		{"ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"},
		{"domingo", "lunes", "martes", "mi\xc3\xa9rcoles", "jueves", "viernes", "s\xc3\xa1" "bado"},
		{"dom", "lun", "mar", "mi\xc3\xa9", "jue", "vie", "s\xc3\xa1" "b"}, "%e de %B de %Y", "%d/%m/%Y", '.', ','},
	{"fr", {"janvier", "f\xc3\xa9vrier", "mars", "avril", "mai", "juin", "juillet", "ao\xc3\xbbt", "septembre", "octobre", "novembre", "d\xc3\xa9" "cembre"},
		{"janv.", "f\xc3\xa9vr.", "mars", "avr.", "mai", "juin", "juil.", "ao\xc3\xbbt", "sept.", "oct.", "nov.", "d\xc3\xa9" "c."},
		{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"},
		{"dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."}, "%e %B %Y", "%d/%m/%Y", ' ', ','},
	{"de", {"Januar", "Februar", "M\xc3\xa4rz", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"},
		{"Jan.", "Feb.", "M\xc3\xa4rz", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."},
		{"Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"},
		{"So.", "Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa."}, "%e. %B %Y", "%d.%m.%Y", '.', ','},
};

static const LangNames *
names_for(const char *lang)
{
	for (int i = 0; i < lengthof(lang_names); i++)
		if (strcmp(lang_names[i].lang, lang) == 0)
			return &lang_names[i];
	return &lang_names[0];
}

static void
append_utf8(StringInfo b, const char *u)
{
	appendStringInfoString(b, pg_any_to_server(u, strlen(u), PG_UTF8));
}

/*
 * Parse YYYY-MM-DD[( |T)HH:MM[:SS[.f]]][Z|(+|-)HH[:MM]]: fills tm (1-based month), has_time,
 * has_offset and offset (seconds east of UTC).  false when v is not such a value.
 */
static bool
parse_when(const char *v, struct pg_tm *tm, bool *has_time, bool *has_offset, int *offset)
{
	int			n = 0;
	const char *c;

	memset(tm, 0, sizeof(*tm));
	*has_time = *has_offset = false;
	*offset = 0;
	if (sscanf(v, "%4d-%2d-%2d%n", &tm->tm_year, &tm->tm_mon, &tm->tm_mday, &n) != 3 || n != 10)
		return false;
	c = v + n;
	if (*c == 'T' || *c == ' ')
	{
		int			m = 0;

		if (sscanf(c + 1, "%2d:%2d%n", &tm->tm_hour, &tm->tm_min, &m) != 2 || m != 5)
			return false;
		c += 1 + m;
		if (*c == ':')
		{
			if (!isdigit((unsigned char) c[1]) || !isdigit((unsigned char) c[2]))
				return false;
			tm->tm_sec = (c[1] - '0') * 10 + (c[2] - '0');
			c += 3;
			if (*c == '.')
				for (c++; isdigit((unsigned char) *c); c++);
		}
		*has_time = true;
		if (*c == 'Z')
		{
			*has_offset = true;
			c++;
		}
		else if (*c == '+' || *c == '-')
		{
			int			sign = *c == '-' ? -1 : 1;
			int			hh = 0,
						mm = 0;

			if (!isdigit((unsigned char) c[1]) || !isdigit((unsigned char) c[2]))
				return false;
			hh = (c[1] - '0') * 10 + (c[2] - '0');
			c += 3;
			if (*c == ':')
				c++;
			if (isdigit((unsigned char) c[0]) && isdigit((unsigned char) c[1]))
			{
				mm = (c[0] - '0') * 10 + (c[1] - '0');
				c += 2;
			}
			*has_offset = true;
			*offset = sign * (hh * 3600 + mm * 60);
		}
	}
	if (*c != '\0')
		return false;
	if (tm->tm_mon < 1 || tm->tm_mon > 12 || tm->tm_mday < 1 || tm->tm_mday > 31 || tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
		return false;
	return true;
}

static void
format_date(Renderer *r, StringInfo b, const char *v, const char *fmt)
{
	struct pg_tm tm;
	bool		has_time;
	bool		has_offset;
	int			offset;
	const LangNames *ln = names_for(r->lang);
	const char *tzname = NULL;
	int			wday;

	if (!parse_when(v, &tm, &has_time, &has_offset, &offset))
	{
		appendStringInfoString(b, v);	/* not a date: shown as it is */
		return;
	}
	if (has_offset)
	{
		Timestamp	ts;
		int			tz = -offset;
		fsec_t		fsec = 0;
		pg_tz	   *zone = NULL;
		int			tzout;

		if (r->tz && r->tz[0])
			zone = pg_tzset(r->tz);
		if (zone == NULL)
			zone = pg_tzset("UTC");
		if (tm2timestamp(&tm, 0, &tz, &ts) == 0 && zone != NULL &&
			timestamp2tm(ts, &tzout, &tm, &fsec, &tzname, zone) == 0)
		{
			/* tm now holds the local time in the contact's zone */
		}
		else
		{
			appendStringInfoString(b, v);
			return;
		}
	}
	wday = j2day(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday));
	if (strcmp(fmt, "long") == 0)
		fmt = has_time ? psprintf("%s, %%H:%%M", ln->long_fmt) : ln->long_fmt;
	else if (strcmp(fmt, "short") == 0)
		fmt = ln->short_fmt;
	else if (strcmp(fmt, "iso") == 0)
		fmt = has_time ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d";
	for (const char *c = fmt; *c; c++)
	{
		if (*c != '%' || c[1] == '\0')
		{
			appendStringInfoChar(b, *c);
			continue;
		}
		c++;
		switch (*c)
		{
			case 'Y':
				appendStringInfo(b, "%04d", tm.tm_year);
				break;
			case 'y':
				appendStringInfo(b, "%02d", tm.tm_year % 100);
				break;
			case 'm':
				appendStringInfo(b, "%02d", tm.tm_mon);
				break;
			case 'd':
				appendStringInfo(b, "%02d", tm.tm_mday);
				break;
			case 'e':
				appendStringInfo(b, "%d", tm.tm_mday);
				break;
			case 'B':
				append_utf8(b, ln->months[tm.tm_mon - 1]);
				break;
			case 'b':
				append_utf8(b, ln->mon[tm.tm_mon - 1]);
				break;
			case 'A':
				append_utf8(b, ln->days[wday]);
				break;
			case 'a':
				append_utf8(b, ln->dy[wday]);
				break;
			case 'H':
				appendStringInfo(b, "%02d", tm.tm_hour);
				break;
			case 'I':
				appendStringInfo(b, "%02d", tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12);
				break;
			case 'M':
				appendStringInfo(b, "%02d", tm.tm_min);
				break;
			case 'S':
				appendStringInfo(b, "%02d", tm.tm_sec);
				break;
			case 'p':
				appendStringInfoString(b, tm.tm_hour < 12 ? "AM" : "PM");
				break;
			case 'j':
				appendStringInfo(b, "%03d", date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - date2j(tm.tm_year, 1, 1) + 1);
				break;
			case 'Z':
				appendStringInfoString(b, tzname ? tzname : "");
				break;
			default:
				appendStringInfoChar(b, *c);
		}
	}
}

/* number: digits grouped by thousands and the language's decimal mark */
static void
format_number(Renderer *r, StringInfo b, const char *v, int decimals, bool has_decimals)
{
	const LangNames *ln = names_for(r->lang);
	char	   *end;
	double		d = strtod(v, &end);
	char	   *digits;
	char	   *dot;
	int			intlen;
	int			start = 0;

	if (end == v || *end != '\0' || !isfinite(d))
	{
		appendStringInfoString(b, v);
		return;
	}
	if (has_decimals)
		digits = psprintf("%.*f", Min(decimals, 10), d);
	else
		digits = pstrdup(v);
	if (digits[0] == '-' || digits[0] == '+')
	{
		if (digits[0] == '-')
			appendStringInfoChar(b, '-');
		start = 1;
	}
	dot = strchr(digits, '.');
	intlen = (dot ? dot - digits : (int) strlen(digits)) - start;
	for (int i = 0; i < intlen; i++)
	{
		if (i > 0 && (intlen - i) % 3 == 0)
		{
			if (ln->thousands == ' ')
				append_utf8(b, "\xe2\x80\xaf");	/* narrow no-break space */
			else
				appendStringInfoChar(b, ln->thousands);
		}
		appendStringInfoChar(b, digits[start + i]);
	}
	if (dot)
	{
		appendStringInfoChar(b, ln->decimal);
		appendStringInfoString(b, dot + 1);
	}
}

static char *
apply_filter(Renderer *r, Filter *f, const char *v)
{
	StringInfoData b;

	if (f->kind == F_DEFAULT)
		return (v == NULL || v[0] == '\0') ? f->arg : (char *) v;
	if (v == NULL)
		return NULL;
	switch (f->kind)
	{
		case F_UPCASE:
			return str_toupper(v, strlen(v), DEFAULT_COLLATION_OID);
		case F_DOWNCASE:
			return str_tolower(v, strlen(v), DEFAULT_COLLATION_OID);
		case F_CAPITALIZE:
			{
				int			l;

				if (v[0] == '\0')
					return (char *) v;
				l = pg_mblen(v);
				return psprintf("%s%s", str_toupper(v, l, DEFAULT_COLLATION_OID),
								str_tolower(v + l, strlen(v + l), DEFAULT_COLLATION_OID));
			}
		case F_TRUNCATE:
			{
				int			nchars = pg_mbstrlen(v);
				int			keep;

				if (nchars <= f->num)
					return (char *) v;
				/* keep num - 3 characters and add "...": num characters in all */
				keep = pg_mbcharcliplen(v, strlen(v), Max(f->num - 3, 0));
				return psprintf("%.*s...", keep, v);
			}
		case F_ESCAPE:
			initStringInfo(&b);
			append_escaped(&b, v);
			return b.data;
		case F_URL_ENCODE:
			initStringInfo(&b);
			for (const unsigned char *c = (const unsigned char *) v; *c; c++)
			{
				if (isalnum(*c) || *c == '-' || *c == '_' || *c == '.' || *c == '~')
					appendStringInfoChar(&b, *c);
				else
					appendStringInfo(&b, "%%%02X", *c);
			}
			return b.data;
		case F_DATE:
			initStringInfo(&b);
			format_date(r, &b, v, f->arg);
			return b.data;
		case F_NUMBER:
			initStringInfo(&b);
			format_number(r, &b, v, f->num, f->num >= 0);
			return b.data;
		default:
			return (char *) v;
	}
}

static bool
is_number(const char *v, double *d)
{
	char	   *end;

	if (v == NULL || v[0] == '\0')
		return false;
	*d = strtod(v, &end);
	return *end == '\0' && isfinite(*d);
}

static bool
eval_cond(Renderer *r, Cond *c)
{
	char	   *path = resolve(c->path, r->scopes, r->nscopes, false);
	const char *v = lookup(r, path);
	double		a,
				b;
	int			cmp;

	if (c->op == OP_PRESENT)
		return v != NULL && v[0] != '\0';
	if (v == NULL)
		return c->op == OP_NE;	/* a missing value equals nothing and is ordered with nothing */
	if (is_number(v, &a) && is_number(c->lit, &b))
		cmp = a < b ? -1 : a > b ? 1 : 0;
	else
		cmp = strcmp(v, c->lit);
	switch (c->op)
	{
		case OP_EQ:
			return cmp == 0;
		case OP_NE:
			return cmp != 0;
		case OP_LT:
			return cmp < 0;
		case OP_GT:
			return cmp > 0;
		case OP_LE:
			return cmp <= 0;
		case OP_GE:
			return cmp >= 0;
		default:
			return false;
	}
}

static void
check_bounds(Renderer *r)
{
	if (++r->steps > TL_MAX_STEPS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("template rendering took more than %d steps", TL_MAX_STEPS),
				 errhint("Loops are limited to %d items; nest fewer loops.", TL_MAX_ITEMS)));
	if (r->out.len > TL_MAX_OUTPUT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rendered template exceeds %d bytes", TL_MAX_OUTPUT),
				 errhint("Shorten the template or its loops.")));
}

static void
render_nodes(Renderer *r, List *nodes)
{
	ListCell   *lc;

	foreach(lc, nodes)
	{
		TNode	   *n = lfirst(lc);

		check_bounds(r);
		switch (n->kind)
		{
			case N_TEXT:
				appendBinaryStringInfo(&r->out, n->text, n->len);
				break;
			case N_VAR:
				{
					char	   *path = resolve(n->path, r->scopes, r->nscopes, false);
					const char *v = lookup(r, path);
					bool		escaped = false;
					ListCell   *fc;

					if (v != NULL && v[0] == '\0')
						v = NULL;
					foreach(fc, n->filters)
					{
						Filter	   *f = lfirst(fc);

						v = apply_filter(r, f, v);
						escaped = (f->kind == F_ESCAPE) ? true : (f->kind == F_DEFAULT ? escaped : false);
					}
					if (v)
					{
						if (r->html && !escaped)
							append_escaped(&r->out, v);
						else
							appendStringInfoString(&r->out, v);
					}
					break;
				}
			case N_IF:
				{
					ListCell   *bc;

					foreach(bc, n->branches)
					{
						Branch	   *b = lfirst(bc);

						if (b->cond == NULL || eval_cond(r, b->cond) != b->negate)
						{
							render_nodes(r, b->body);
							break;
						}
					}
					break;
				}
			case N_EACH:
				{
					char	   *list = resolve(n->path, r->scopes, r->nscopes, false);
					const char *cnt = lookup(r, psprintf("%s.#", list));
					int			count = cnt ? atoi(cnt) : 0;

					count = Min(count, TL_MAX_ITEMS);
					if (count <= 0)
					{
						render_nodes(r, n->else_body);
						break;
					}
					r->scopes[r->nscopes].alias = n->alias;
					r->scopes[r->nscopes].list = list;
					r->nscopes++;
					for (int i = 1; i <= count; i++)
					{
						r->scopes[r->nscopes - 1].index = i;
						render_nodes(r, n->body);
					}
					r->nscopes--;
					break;
				}
		}
	}
}

char *
tl_render(const char *s, int len, bool html, char **keys, char **vals, int nkeys, int *outlen)
{
	Renderer	r;
	List	   *nodes = parse_template("text", s, len);
	const char *lang;
	char		primary[9];
	int			i;

	memset(&r, 0, sizeof(r));
	r.html = html;
	r.keys = keys;
	r.vals = vals;
	r.nkeys = nkeys;
	/* language and time zone: the message's (set by outreach._content_tokens), else the contact's */
	lang = lookup(&r, "message.language");
	if (lang == NULL || lang[0] == '\0')
		lang = lookup(&r, "contact.language");
	for (i = 0; lang && lang[i] && lang[i] != '-' && i < 8; i++)
		primary[i] = pg_ascii_tolower((unsigned char) lang[i]);
	primary[i] = '\0';
	r.lang = pstrdup(primary);
	r.tz = lookup(&r, "contact.time_zone");
	initStringInfo(&r.out);
	render_nodes(&r, nodes);
	check_bounds(&r);
	*outlen = r.out.len;
	return r.out.data;
}
