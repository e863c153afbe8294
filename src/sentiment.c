/*
 * sentiment.c: outreach.sentiment(text) -> double precision in [-1, 1].
 *
 * A lexicon-and-rules scorer in the manner of VADER (Hutto & Gilbert, 2014), small enough
 * to read in one sitting; docs/social.md describes it for users.  The text is cut into
 * tokens (words, emoticons, "!" marks).  Each word found in the lexicon contributes its
 * valence (-4..4), adjusted by the rules:
 *
 *   - intensifiers ("very", "extremely", "so") just before a word strengthen it by 0.293,
 *     diminishers ("slightly", "somewhat", "kind of", "a bit") weaken it by 0.293;
 *     one word further back counts 95 % as much;
 *   - a word in capitals in a text that is not all capitals is stressed by 0.733;
 *   - a negation ("not", "no", "never", "without", "n't"...) in the three tokens before a
 *     word flips and dampens it (x -0.74), so "not bad" is mildly positive;
 *   - "but" (and "however") shifts the weight: what comes before counts half, what comes
 *     after one and a half times ("the staff were nice but the wait was awful");
 *   - emoticons carry their own valence (":)" 2, ":(" -2, "<3" 2.5...), not negated;
 *   - up to four "!" add 0.292 each in the direction of the text.
 *
 * The sum s is mapped to (-1, 1) by s / sqrt(s^2 + 15).  A text without a sentiment word
 * scores 0; only the first MAX_TOKENS tokens are read.  The function is IMMUTABLE: the
 * lexicon is compiled in.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(outreach_sentiment);

typedef struct LexEntry
{
	const char *word;
	double		valence;
} LexEntry;

/* Valences on VADER's -4..4 scale, chosen by hand for patient and public-health talk. */
static const LexEntry lexicon[] = {
	/* positive */
	{"amazing", 2.8}, {"awesome", 3.1}, {"appreciate", 2.0}, {"appreciated", 2.1}, {"beautiful", 2.9},
	{"best", 3.2}, {"better", 1.9}, {"bless", 1.8}, {"brilliant", 2.8}, {"calm", 1.3},
	{"care", 1.5}, {"caring", 2.2}, {"clean", 1.7}, {"clear", 1.2}, {"comfortable", 1.8},
	{"compassionate", 2.3}, {"convenient", 1.6}, {"cool", 1.3}, {"courteous", 1.9}, {"delighted", 3.0},
	{"easy", 1.9}, {"effective", 1.9}, {"efficient", 1.8}, {"encouraging", 2.1}, {"enjoy", 2.2},
	{"enjoyed", 2.3}, {"excellent", 3.2}, {"excited", 2.2}, {"exceptional", 2.9}, {"fabulous", 3.0},
	{"fantastic", 3.0}, {"fast", 1.2}, {"fine", 0.8}, {"free", 1.2}, {"friendly", 2.2},
	{"fun", 2.3}, {"glad", 2.0}, {"good", 1.9}, {"grateful", 2.4}, {"great", 3.1},
	{"happy", 2.7}, {"healthy", 1.7}, {"helpful", 2.2}, {"hope", 1.9}, {"impressed", 2.1},
	{"important", 0.8}, {"informative", 1.7}, {"kind", 2.0}, {"like", 1.5}, {"liked", 1.8},
	{"love", 3.2}, {"loved", 2.9}, {"lovely", 2.8}, {"nice", 1.8}, {"painless", 1.6},
	{"perfect", 2.9}, {"pleasant", 2.3}, {"pleased", 2.2}, {"polite", 1.8}, {"professional", 1.6},
	{"quick", 1.2}, {"reassuring", 2.0}, {"recommend", 1.9}, {"recommended", 1.8}, {"relief", 1.7},
	{"relieved", 1.9}, {"reliable", 1.8}, {"safe", 1.9}, {"satisfied", 1.9}, {"smooth", 1.5},
	{"success", 2.5}, {"superb", 3.0}, {"support", 1.7}, {"supportive", 2.2}, {"thank", 1.8},
	{"thanks", 1.9}, {"thankful", 2.3}, {"useful", 1.9}, {"welcoming", 2.1}, {"wonderful", 3.0},
	{"worth", 1.5}, {"yay", 2.4}, {"well", 1.1}, {"recovered", 1.5}, {"impressive", 2.3},
	{"attentive", 1.9}, {"patient", 0.9}, {"gentle", 1.8}, {"organised", 1.5}, {"organized", 1.5},
	{"trust", 2.0}, {"positive", 2.2}, {"benefit", 1.6}, {"worked", 1.1}, {"works", 1.0},
	/* negative */
	{"abandoned", -2.2}, {"angry", -2.6}, {"annoyed", -2.0}, {"annoying", -2.2}, {"anxious", -1.8},
	{"awful", -3.1}, {"bad", -2.5}, {"boring", -1.7}, {"broken", -2.0}, {"careless", -2.0},
	{"chaos", -2.2}, {"chaotic", -2.3}, {"cold", -0.9}, {"complain", -1.8}, {"complaint", -1.9},
	{"confused", -1.6}, {"confusing", -1.8}, {"crowded", -1.3}, {"dangerous", -2.6}, {"delay", -1.4},
	{"delayed", -1.5}, {"dirty", -2.1}, {"disappointed", -2.2}, {"disappointing", -2.4}, {"disaster", -3.1},
	{"disgusting", -3.0}, {"dismissive", -2.1}, {"dreadful", -2.9}, {"dumb", -2.1}, {"expensive", -1.3},
	{"fail", -2.3}, {"failed", -2.3}, {"fear", -2.2}, {"frustrated", -2.2}, {"frustrating", -2.3},
	{"hate", -2.7}, {"hated", -3.0}, {"horrible", -3.0}, {"hostile", -2.5}, {"hurt", -2.2},
	{"ignored", -1.9}, {"incompetent", -2.7}, {"inconvenient", -1.6}, {"late", -1.1}, {"lost", -1.3},
	{"mess", -2.0}, {"mistake", -1.7}, {"miserable", -2.9}, {"nightmare", -3.0}, {"pain", -2.1},
	{"painful", -2.4}, {"pathetic", -2.7}, {"poor", -2.1}, {"problem", -1.7}, {"problems", -1.8},
	{"rude", -2.5}, {"sad", -2.1}, {"scam", -2.9}, {"scared", -2.2}, {"scary", -2.2},
	{"shame", -2.1}, {"sick", -1.8}, {"slow", -1.3}, {"sore", -1.4}, {"sorry", -0.6},
	{"stressful", -2.1}, {"stupid", -2.4}, {"terrible", -3.1}, {"unacceptable", -2.6}, {"unclear", -1.4},
	{"unfriendly", -2.1}, {"unhappy", -2.4}, {"unhelpful", -2.2}, {"upset", -2.0}, {"useless", -2.5},
	{"waste", -2.1}, {"wasted", -2.2}, {"worried", -1.9}, {"worse", -2.3}, {"worst", -3.1},
	{"wrong", -2.1}, {"ugh", -1.8}, {"unsafe", -2.4}, {"cancelled", -1.2}, {"canceled", -1.2},
	{"ridiculous", -2.3}, {"lies", -2.2}, {"misleading", -2.3}, {"fake", -2.1}, {"outrageous", -2.6},
	{"negative", -2.0}, {"dissatisfied", -2.2}, {"bored", -1.5}, {"crap", -2.5}, {"sucks", -2.6},
	{"suck", -2.4}, {"meh", -0.8}, {"tired", -1.2}, {"exhausted", -1.7}, {"nervous", -1.4},
	{"hurts", -2.1}, {"disrespectful", -2.5}, {"lazy", -1.9}, {"inadequate", -2.0}, {"avoid", -1.3},
};

typedef struct Emoticon
{
	const char *text;
	double		valence;
} Emoticon;

/* Longest first, so ":-)" is not read as ":-" then ")". */
static const Emoticon emoticons[] = {
	{":'(", -2.5}, {":-)", 2.0}, {":-(", -2.0}, {":-D", 2.5}, {";-)", 1.5}, {":-/", -1.0},
	{":)", 2.0}, {":(", -2.0}, {":D", 2.5}, {";)", 1.5}, {":/", -1.0}, {"<3", 2.5},
	{":|", -0.3}, {"=)", 2.0}, {"=(", -2.0}, {":P", 1.0}, {"xD", 2.2}, {"XD", 2.2},
};

static const char *const negations[] = {
	"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "without",
	"cannot", "cant", "dont", "doesnt", "didnt", "isnt", "wasnt", "werent", "arent", "wont",
	"wouldnt", "couldnt", "shouldnt", "havent", "hasnt", "hadnt", "aint", "hardly", "barely",
};

static const char *const boosters[] = {
	"very", "extremely", "really", "so", "super", "incredibly", "absolutely", "totally",
	"completely", "highly", "truly", "especially", "particularly", "utterly", "most", "too",
	"remarkably", "exceptionally", "seriously", "deeply", "hugely", "such",
};

static const char *const dampeners[] = {
	"slightly", "somewhat", "fairly", "quite", "rather", "marginally", "partly", "almost", "mildly",
};

#define BOOST 0.293
#define CAPS_BOOST 0.733
#define NEGATE -0.74
#define MAX_TOKENS 2048

typedef enum TokKind
{
	TOK_WORD,
	TOK_EMOTICON,
	TOK_BREAK					/* ".", ",", ";", "?" end a negation's reach */
} TokKind;

typedef struct Token
{
	TokKind		kind;
	char		word[48];		/* lower case, apostrophes removed */
	bool		caps;			/* written in capitals (two letters or more) */
	double		valence;		/* emoticons */
} Token;

static bool
in_list(const char *w, const char *const *list, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(w, list[i]) == 0)
			return true;
	return false;
}

static double
lexicon_valence(const char *w)
{
	char		stem[48];
	size_t		len = strlen(w);

	for (int i = 0; i < (int) lengthof(lexicon); i++)
		if (strcmp(w, lexicon[i].word) == 0)
			return lexicon[i].valence;
	/* plural -s and adverb -ly of a lexicon word */
	if (len > 3 && w[len - 1] == 's')
	{
		memcpy(stem, w, len - 1);
		stem[len - 1] = '\0';
		for (int i = 0; i < (int) lengthof(lexicon); i++)
			if (strcmp(stem, lexicon[i].word) == 0)
				return lexicon[i].valence;
	}
	if (len > 4 && w[len - 2] == 'l' && w[len - 1] == 'y')
	{
		memcpy(stem, w, len - 2);
		stem[len - 2] = '\0';
		for (int i = 0; i < (int) lengthof(lexicon); i++)
			if (strcmp(stem, lexicon[i].word) == 0)
				return lexicon[i].valence;
	}
	return 0.0;
}

static bool
is_negation(const char *w)
{
	size_t		len = strlen(w);

	if (in_list(w, negations, lengthof(negations)))
		return true;
	/* any other "...n't" that lost its apostrophe: "mustnt", "neednt" */
	return len > 3 && w[len - 2] == 'n' && w[len - 1] == 't' && w[len - 3] != 'e' && w[len - 3] != 'a' &&
		w[len - 3] != 'i' && w[len - 3] != 'o' && w[len - 3] != 'u' && w[len - 3] != 'r' && w[len - 3] != 'n';
}

/* Tokenizes text; returns the number of tokens, counts '!' into *bangs. */
static int
tokenize(const char *s, Token *toks, int *bangs, int *n_letters_upper, int *n_letters)
{
	const char *start = s;
	int			n = 0;

	*bangs = 0;
	while (*s && n < MAX_TOKENS)
	{
		bool		matched = false;

		for (int i = 0; i < (int) lengthof(emoticons); i++)
		{
			size_t		el = strlen(emoticons[i].text);

			/* an emoticon stands alone: "xD" is no emoticon inside "boxDay", ":P" none in ":Patient" */
			if (strncmp(s, emoticons[i].text, el) == 0 && !isalnum((unsigned char) s[el]) &&
				!(isalnum((unsigned char) emoticons[i].text[0]) && s > start && isalnum((unsigned char) s[-1])))
			{
				toks[n].kind = TOK_EMOTICON;
				toks[n].word[0] = '\0';
				toks[n].caps = false;
				toks[n].valence = emoticons[i].valence;
				n++;
				s += el;
				matched = true;
				break;
			}
		}
		if (matched)
			continue;
		if (isalpha((unsigned char) *s) || (unsigned char) *s >= 0x80)
		{
			int			len = 0;
			int			upper = 0;
			int			letters = 0;

			while (*s && (isalpha((unsigned char) *s) || *s == '\'' || (unsigned char) *s >= 0x80 ||
						  (s[0] == '\xe2' && s[1] == '\x80' && s[2] == '\x99')))
			{
				if (s[0] == '\xe2' && s[1] == '\x80' && s[2] == '\x99')
				{
					s += 3;		/* typographic apostrophe */
					continue;
				}
				if (*s != '\'')
				{
					if (isupper((unsigned char) *s))
						upper++;
					if (isalpha((unsigned char) *s))
						letters++;
					if (len < (int) sizeof(toks[n].word) - 1)
						toks[n].word[len++] = pg_ascii_tolower((unsigned char) *s);
				}
				s++;
			}
			toks[n].word[len] = '\0';
			toks[n].kind = TOK_WORD;
			toks[n].caps = letters >= 2 && upper == letters;
			toks[n].valence = 0;
			*n_letters_upper += upper;
			*n_letters += letters;
			n++;
			continue;
		}
		if (*s == '!')
			(*bangs)++;
		if (*s == '.' || *s == ',' || *s == ';' || *s == '?' || *s == '!' || *s == ':')
		{
			if (n == 0 || toks[n - 1].kind != TOK_BREAK)
			{
				toks[n].kind = TOK_BREAK;
				toks[n].word[0] = '\0';
				toks[n].caps = false;
				toks[n].valence = 0;
				n++;
			}
		}
		s++;
	}
	return n;
}

static double
sentiment_of(const char *text)
{
	Token	   *toks = palloc(sizeof(Token) * MAX_TOKENS);
	double	   *scores;
	int			bangs;
	int			upper = 0;
	int			letters = 0;
	int			n = tokenize(text, toks, &bangs, &upper, &letters);
	bool		shouting = letters > 0 && upper == letters;		/* all capitals: no word stands out */
	int			but_at = -1;
	double		sum = 0.0;
	bool		any = false;

	scores = palloc0(sizeof(double) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		double		v;

		if (toks[i].kind == TOK_EMOTICON)
		{
			scores[i] = toks[i].valence;
			any = true;
			continue;
		}
		if (toks[i].kind != TOK_WORD)
			continue;
		if (strcmp(toks[i].word, "but") == 0 || strcmp(toks[i].word, "however") == 0)
		{
			but_at = i;
			continue;
		}
		/* "kind of", "like" as filler: the lexicon words used as hedges carry no valence */
		if ((strcmp(toks[i].word, "kind") == 0 || strcmp(toks[i].word, "sort") == 0) &&
			i + 1 < n && strcmp(toks[i + 1].word, "of") == 0)
			continue;
		if (strcmp(toks[i].word, "like") == 0 && i > 0 && toks[i - 1].kind == TOK_WORD &&
			(strcmp(toks[i - 1].word, "feel") == 0 || strcmp(toks[i - 1].word, "feels") == 0 ||
			 strcmp(toks[i - 1].word, "looks") == 0 || strcmp(toks[i - 1].word, "look") == 0 ||
			 strcmp(toks[i - 1].word, "seems") == 0 || strcmp(toks[i - 1].word, "would") == 0))
			continue;
		v = lexicon_valence(toks[i].word);
		if (v == 0.0)
			continue;
		any = true;

		if (toks[i].caps && !shouting)
			v += (v > 0 ? CAPS_BOOST : -CAPS_BOOST);

		/* intensifiers and dampeners, one and two words back */
		for (int back = 1; back <= 2 && i - back >= 0; back++)
		{
			const Token *t = &toks[i - back];
			double		scale = back == 1 ? 1.0 : 0.95;

			if (t->kind != TOK_WORD)
				break;
			if (in_list(t->word, boosters, lengthof(boosters)))
				v += (v > 0 ? BOOST : -BOOST) * scale;
			else if (in_list(t->word, dampeners, lengthof(dampeners)))
				v -= (v > 0 ? BOOST : -BOOST) * scale;
			else if ((strcmp(t->word, "of") == 0 && i - back - 1 >= 0 &&
					  (strcmp(toks[i - back - 1].word, "kind") == 0 || strcmp(toks[i - back - 1].word, "sort") == 0)) ||
					 ((strcmp(t->word, "bit") == 0 || strcmp(t->word, "little") == 0) && i - back - 1 >= 0 &&
					  strcmp(toks[i - back - 1].word, "a") == 0))
				v -= (v > 0 ? BOOST : -BOOST) * scale;
		}

		/* negation in the three tokens before, within the clause */
		for (int back = 1; back <= 3 && i - back >= 0; back++)
		{
			const Token *t = &toks[i - back];

			if (t->kind != TOK_WORD || strcmp(t->word, "but") == 0)
				break;
			if (is_negation(t->word))
			{
				/* "never so good", "no doubt": still a negation, once */
				v *= NEGATE;
				break;
			}
		}
		scores[i] = v;
	}

	for (int i = 0; i < n; i++)
	{
		double		w = 1.0;

		if (but_at >= 0)
			w = i < but_at ? 0.5 : 1.5;
		sum += scores[i] * w;
	}
	pfree(scores);
	pfree(toks);

	if (!any || sum == 0.0)
		return 0.0;
	if (bangs > 0)
		sum += (sum > 0 ? 1 : -1) * 0.292 * Min(bangs, 4);
	return sum / sqrt(sum * sum + 15.0);
}

Datum
outreach_sentiment(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *s = text_to_cstring(t);
	double		r = sentiment_of(s);

	pfree(s);
	if (r > 1.0)
		r = 1.0;
	if (r < -1.0)
		r = -1.0;
	PG_RETURN_FLOAT8(r);
}
