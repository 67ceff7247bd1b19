/*
 * fhirpath.c — FHIRPath subset: lexer, Pratt parser into a flat AST, the
 * process-wide expression cache, and a tree-walking evaluator over jansson
 * nodes typed by the R4 definition tables (see fhirpath.h).
 *
 * Memory: a parsed expression is one struct with two arrays (nodes, argument
 * lists) and one string pool.  Evaluation allocates only from the workspace
 * arena (bump allocation in chunks kept across resets), so an evaluation
 * over a warm workspace does not call malloc.  Sub-expressions that do not
 * depend on the input (`%resource.descendants().reference`) are evaluated
 * once per evaluation and memoised, which keeps invariants such as dom-3
 * linear instead of quadratic.
 */
#include "fhir/fhirpath.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

/* ====================================================================== */
/* arena                                                                  */
/* ====================================================================== */

struct chunk {
	struct chunk *next;
	size_t size;
	_Alignas(16) char data[];
};

#define CHUNK_MIN (32u * 1024)

void salus_fp_ctx_init(struct salus_fp_ctx *cx, void *buf, size_t len)
{
	memset(cx, 0, sizeof *cx);
	cx->init_buf = buf;
	cx->init_len = buf ? len : 0;
	cx->cur = cx->init_buf;
	cx->left = cx->init_len;
}

void salus_fp_ctx_reset(struct salus_fp_ctx *cx)
{
	cx->at = NULL;
	cx->cur = cx->init_buf;
	cx->left = cx->init_len;
	cx->steps = 0;
	cx->rc = 0;
	cx->err = NULL;
}

void salus_fp_ctx_release(struct salus_fp_ctx *cx)
{
	struct chunk *c = cx->chunks;
	while (c) {
		struct chunk *n = c->next;
		salus_free(c);
		c = n;
	}
	cx->chunks = NULL;
	cx->used = 0;
	salus_fp_ctx_reset(cx);
}

static void *arena_alloc(struct salus_fp_ctx *cx, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (cx->cur && ((uintptr_t)cx->cur & 15)) { /* caller's buffer may be unaligned */
		size_t pad = 16 - ((uintptr_t)cx->cur & 15);
		if (pad > cx->left) {
			cx->left = 0;
		} else {
			cx->cur += pad;
			cx->left -= pad;
		}
	}
	if (n <= cx->left) {
		void *p = cx->cur;
		cx->cur += n;
		cx->left -= n;
		return p;
	}
	/* next kept chunk that fits, else a new one appended */
	struct chunk *c = cx->at ? ((struct chunk *)cx->at)->next : cx->chunks, *last = NULL;
	for (; c; c = c->next) {
		if (c->size >= n)
			break;
	}
	if (!c) {
		for (last = cx->chunks; last && last->next; last = last->next)
			;
		size_t sz = n > CHUNK_MIN ? n : CHUNK_MIN;
		if (cx->used / 2 > sz)
			sz = cx->used / 2; /* grow geometrically */
		if (cx->used + sz > SALUS_FP_ARENA_MAX) {
			if (!cx->rc)
				cx->rc = SALUS_ETOOLARGE;
			return NULL;
		}
		c = salus_malloc(sizeof *c + sz);
		if (!c) {
			if (!cx->rc)
				cx->rc = SALUS_ENOMEM;
			return NULL;
		}
		c->next = NULL;
		c->size = sz;
		cx->used += sz;
		if (last)
			last->next = c;
		else
			cx->chunks = c;
	}
	cx->at = c;
	cx->cur = c->data + n;
	cx->left = c->size - n;
	return c->data;
}

/* ====================================================================== */
/* AST                                                                    */
/* ====================================================================== */

enum nop {
	N_EMPTY, /* {} */
	N_BOOL,
	N_INT,
	N_DEC,
	N_STR,
	N_THIS,
	N_INDEX,
	N_TOTAL,
	N_EXT,     /* %name */
	N_IDENT,   /* member (or type name) on the input */
	N_CHILD,   /* a.name */
	N_FUNC,    /* [a.]fn(args) */
	N_INDEXER, /* a[b] */
	N_NEG,     /* -a */
	N_BIN,     /* a op b */
	N_IS,      /* a is T */
	N_AS,      /* a as T */
};

enum bop {
	B_MUL, B_DIV, B_IDIV, B_MOD, B_ADD, B_SUB, B_CONCAT, B_UNION, B_LT, B_GT, B_LE, B_GE, B_EQ, B_NE,
	B_EQUIV, B_NEQUIV, B_IN, B_CONTAINS, B_AND, B_OR, B_XOR, B_IMPLIES,
};

#define FN_LIST(X)                                                                                        \
	X(EMPTY, "empty", 0, 0, 0) X(EXISTS, "exists", 0, 1, 1) X(ALL, "all", 1, 1, 1) X(NOT, "not", 0, 0, 0) \
	X(WHERE, "where", 1, 1, 1) X(SELECT, "select", 1, 1, 1) X(FIRST, "first", 0, 0, 0)                   \
	X(LAST, "last", 0, 0, 0) X(TAIL, "tail", 0, 0, 0) X(SKIP, "skip", 1, 1, 0) X(TAKE, "take", 1, 1, 0)  \
	X(COUNT, "count", 0, 0, 0) X(DISTINCT, "distinct", 0, 0, 0) X(ISDISTINCT, "isDistinct", 0, 0, 0)    \
	X(HASVALUE, "hasValue", 0, 0, 0) X(CHILDREN, "children", 0, 0, 0)                                    \
	X(DESCENDANTS, "descendants", 0, 0, 0) X(OFTYPE, "ofType", 1, 1, 2) X(AS, "as", 1, 1, 2)             \
	X(IS, "is", 1, 1, 2) X(RESOLVE, "resolve", 0, 0, 0) X(EXTENSION, "extension", 1, 1, 0)               \
	X(STARTSWITH, "startsWith", 1, 1, 0) X(ENDSWITH, "endsWith", 1, 1, 0)                                 \
	X(CONTAINSF, "contains", 1, 1, 0) X(MATCHES, "matches", 1, 1, 0) X(LENGTH, "length", 0, 0, 0)       \
	X(SUBSTRING, "substring", 1, 2, 0) X(UPPER, "upper", 0, 0, 0) X(LOWER, "lower", 0, 0, 0)            \
	X(INDEXOF, "indexOf", 1, 1, 0) X(REPLACE, "replace", 2, 2, 0) X(TOSTRING, "toString", 0, 0, 0)      \
	X(TOINTEGER, "toInteger", 0, 0, 0) X(INTERSECT, "intersect", 1, 1, 0)                                 \
	X(EXCLUDE, "exclude", 1, 1, 0) X(UNION, "union", 1, 1, 0) X(COMBINE, "combine", 1, 1, 0)             \
	X(SINGLE, "single", 0, 0, 0) X(IIF, "iif", 2, 3, 0) X(TRACE, "trace", 1, 2, 0)                       \
	X(ALLTRUE, "allTrue", 0, 0, 0) X(ANYTRUE, "anyTrue", 0, 0, 0) X(ALLFALSE, "allFalse", 0, 0, 0)       \
	X(ANYFALSE, "anyFalse", 0, 0, 0) X(SUBSETOF, "subsetOf", 1, 1, 0)                                     \
	X(SUPERSETOF, "supersetOf", 1, 1, 0) X(GETVALUE, "getValue", 0, 0, 0)                                 \
	X(HASEXT, "hasExtension", 1, 1, 0) X(MEMBEROF, "memberOf", 1, 1, 0)                                   \
	X(CONFORMSTO, "conformsTo", 1, 1, 0) X(HTMLCHECKS, "htmlChecks", 0, 0, 0)                            \
	X(TODAY, "today", 0, 0, 0) X(NOW, "now", 0, 0, 0) X(ABS, "abs", 0, 0, 0)                             \
	X(REPEAT, "repeat", 1, 1, 1) X(ISTYPE, "type", 0, 0, 0)

/* flags: 1 = lambda (the argument is evaluated per item), 2 = type specifier */
enum fn {
#define FN_ENUM(id, name, mina, maxa, fl) F_##id,
	FN_LIST(FN_ENUM)
#undef FN_ENUM
	F_COUNT_
};

static const struct fninfo {
	const char *name;
	unsigned char mina, maxa, flags;
} fns[] = {
#define FN_ROW(id, name, mina, maxa, fl) {name, mina, maxa, fl},
	FN_LIST(FN_ROW)
#undef FN_ROW
};

struct node {
	unsigned char op;    /* enum nop */
	unsigned char sub;   /* enum bop or enum fn */
	unsigned char konst; /* value does not depend on the input (memoised) */
	unsigned char nargs;
	int a, b;            /* child nodes (-1 none) */
	int args;            /* first index into argv */
	const char *s;       /* identifier / string / type name (NUL-terminated, in pool) */
	size_t n;
	long long i;
	double d;
};

struct salus_fp_expr {
	struct node *nodes;
	size_t nnodes;
	int *argv;
	int root;
	bool has_konst;
	char *text;
	char *pool; /* strings referenced by nodes */
};

/* ====================================================================== */
/* lexer + parser                                                         */
/* ====================================================================== */

enum tok {
	T_EOF, T_IDENT, T_STR, T_NUM, T_DATE, T_EXT, T_SPECIAL, T_DOT, T_LBRACK, T_RBRACK, T_LPAREN, T_RPAREN,
	T_COMMA, T_PIPE, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_AMP, T_EQ, T_NE, T_EQUIV, T_NEQUIV, T_LT, T_GT, T_LE,
	T_GE, T_LBRACE, T_RBRACE,
};

struct parser {
	const char *p, *end;
	enum tok t;
	const char *ts; /* token text (raw) */
	size_t tn;
	bool quoted;    /* backtick identifier / quoted external constant */
	struct node *nodes;
	size_t nnodes, cap;
	int *argv;
	size_t nargv, argcap;
	struct salus_buf pool; /* offsets recorded in node.s as (char *)offset+1 until fix-up */
	const char *err;
	int rc;
	int depth;
};

static void perr(struct parser *P, const char *msg)
{
	if (!P->rc) {
		P->rc = SALUS_EINVALID;
		P->err = msg;
	}
}

static void lex(struct parser *P)
{
	const char *p = P->p, *e = P->end;
	for (;;) {
		while (p < e && isspace((unsigned char)*p))
			p++;
		if (p + 1 < e && p[0] == '/' && p[1] == '/') {
			while (p < e && *p != '\n')
				p++;
			continue;
		}
		if (p + 1 < e && p[0] == '/' && p[1] == '*') {
			p += 2;
			while (p + 1 < e && !(p[0] == '*' && p[1] == '/'))
				p++;
			p = p + 1 < e ? p + 2 : e;
			continue;
		}
		break;
	}
	P->quoted = false;
	P->ts = p;
	P->tn = 1;
	if (p >= e) {
		P->t = T_EOF;
		P->tn = 0;
		P->p = p;
		return;
	}
	char c = *p;
	if (isalpha((unsigned char)c) || c == '_') {
		const char *s = p;
		while (p < e && (isalnum((unsigned char)*p) || *p == '_'))
			p++;
		P->t = T_IDENT;
		P->ts = s;
		P->tn = (size_t)(p - s);
		P->p = p;
		return;
	}
	if (c == '`' || c == '\'') {
		const char *s = ++p;
		while (p < e && *p != c) {
			if (*p == '\\' && p + 1 < e)
				p++;
			p++;
		}
		if (p >= e) {
			perr(P, "unterminated string or identifier");
			P->t = T_EOF;
			return;
		}
		P->t = c == '`' ? T_IDENT : T_STR;
		P->quoted = true;
		P->ts = s;
		P->tn = (size_t)(p - s);
		P->p = p + 1;
		return;
	}
	if (isdigit((unsigned char)c)) {
		const char *s = p;
		while (p < e && isdigit((unsigned char)*p))
			p++;
		if (p + 1 < e && *p == '.' && isdigit((unsigned char)p[1])) {
			p++;
			while (p < e && isdigit((unsigned char)*p))
				p++;
		}
		P->t = T_NUM;
		P->ts = s;
		P->tn = (size_t)(p - s);
		P->p = p;
		return;
	}
	if (c == '@') {
		const char *s = ++p;
		while (p < e && (isalnum((unsigned char)*p) || *p == '-' || *p == ':' || *p == '.' || *p == '+'))
			p++;
		P->t = T_DATE;
		P->ts = s;
		P->tn = (size_t)(p - s);
		P->p = p;
		if (!P->tn)
			perr(P, "empty date literal");
		return;
	}
	if (c == '%' || c == '$') {
		const char *s = ++p;
		if (c == '%' && p < e && (*p == '`' || *p == '\'')) {
			char q = *p++;
			s = p;
			while (p < e && *p != q)
				p++;
			if (p >= e) {
				perr(P, "unterminated external constant");
				P->t = T_EOF;
				return;
			}
			P->t = T_EXT;
			P->ts = s;
			P->tn = (size_t)(p - s);
			P->p = p + 1;
			return;
		}
		while (p < e && (isalnum((unsigned char)*p) || *p == '_' || *p == '-'))
			p++;
		P->t = c == '%' ? T_EXT : T_SPECIAL;
		P->ts = s;
		P->tn = (size_t)(p - s);
		P->p = p;
		if (!P->tn)
			perr(P, "empty name after % or $");
		return;
	}
	P->p = p + 1;
	switch (c) {
	case '.': P->t = T_DOT; return;
	case '[': P->t = T_LBRACK; return;
	case ']': P->t = T_RBRACK; return;
	case '(': P->t = T_LPAREN; return;
	case ')': P->t = T_RPAREN; return;
	case '{': P->t = T_LBRACE; return;
	case '}': P->t = T_RBRACE; return;
	case ',': P->t = T_COMMA; return;
	case '|': P->t = T_PIPE; return;
	case '+': P->t = T_PLUS; return;
	case '-': P->t = T_MINUS; return;
	case '*': P->t = T_STAR; return;
	case '/': P->t = T_SLASH; return;
	case '&': P->t = T_AMP; return;
	case '=': P->t = T_EQ; return;
	case '~': P->t = T_EQUIV; return;
	case '!':
		if (p + 1 < e && (p[1] == '=' || p[1] == '~')) {
			P->t = p[1] == '=' ? T_NE : T_NEQUIV;
			P->p = p + 2;
			return;
		}
		break;
	case '<':
	case '>':
		if (p + 1 < e && p[1] == '=') {
			P->t = c == '<' ? T_LE : T_GE;
			P->p = p + 2;
		} else {
			P->t = c == '<' ? T_LT : T_GT;
		}
		return;
	default: break;
	}
	perr(P, "unexpected character");
	P->t = T_EOF;
}

static bool tok_is(const struct parser *P, const char *kw)
{
	return P->t == T_IDENT && !P->quoted && strlen(kw) == P->tn && !memcmp(P->ts, kw, P->tn);
}

static int new_node(struct parser *P, enum nop op)
{
	if (P->rc)
		return -1;
	if (P->nnodes == P->cap) {
		size_t nc = P->cap ? P->cap * 2 : 16;
		struct node *nn = salus_realloc(P->nodes, nc * sizeof *nn);
		if (!nn) {
			P->rc = SALUS_ENOMEM;
			return -1;
		}
		P->nodes = nn;
		P->cap = nc;
	}
	struct node *n = &P->nodes[P->nnodes];
	memset(n, 0, sizeof *n);
	n->op = (unsigned char)op;
	n->a = n->b = -1;
	return (int)P->nnodes++;
}

/* Store a string in the pool; node.s holds offset+1 until fix-up. */
static void set_str(struct parser *P, int id, const char *s, size_t n, bool unescape)
{
	if (P->rc || id < 0)
		return;
	size_t off = P->pool.n;
	int rc = 0;
	if (unescape) {
		for (size_t i = 0; i < n && !rc; i++) {
			char c = s[i];
			if (c == '\\' && i + 1 < n) {
				c = s[++i];
				switch (c) {
				case 'n': c = '\n'; break;
				case 't': c = '\t'; break;
				case 'r': c = '\r'; break;
				case 'f': c = '\f'; break;
				case 'u': /* \uXXXX: keep ASCII, replace others by '?' */
					if (i + 4 < n) {
						unsigned v = 0;
						for (int k = 1; k <= 4; k++) {
							char h = s[i + (size_t)k];
							v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10) & 15);
						}
						i += 4;
						c = v < 128 ? (char)v : '?';
					}
					break;
				default: break;
				}
			}
			rc = salus_buf_addc(&P->pool, c);
		}
	} else {
		rc = salus_buf_add(&P->pool, s, n);
	}
	if (!rc)
		rc = salus_buf_addc(&P->pool, 0);
	if (rc) {
		P->rc = SALUS_ENOMEM;
		return;
	}
	P->nodes[id].s = (const char *)(uintptr_t)(off + 1);
	P->nodes[id].n = P->pool.n - off - 1;
}

static int add_arg(struct parser *P, int id)
{
	if (P->rc)
		return -1;
	if (P->nargv == P->argcap) {
		size_t nc = P->argcap ? P->argcap * 2 : 16;
		int *na = salus_realloc(P->argv, nc * sizeof *na);
		if (!na) {
			P->rc = SALUS_ENOMEM;
			return -1;
		}
		P->argv = na;
		P->argcap = nc;
	}
	P->argv[P->nargv++] = id;
	return 0;
}

static int parse_expr(struct parser *P, int minbp);

/* A type specifier: Ident ('.' Ident)? */
static int parse_type_spec(struct parser *P, int id)
{
	if (P->t != T_IDENT) {
		perr(P, "type name expected");
		return -1;
	}
	const char *s = P->ts;
	size_t n = P->tn;
	lex(P);
	if (P->t == T_DOT) {
		const char *save = P->p;
		lex(P);
		if (P->t == T_IDENT) {
			n = (size_t)(P->ts + P->tn - s);
			lex(P);
		} else {
			P->p = save;
			perr(P, "type name expected after '.'");
			return -1;
		}
	}
	set_str(P, id, s, n, false);
	return 0;
}

static int parse_call(struct parser *P, int focus, const char *name, size_t nlen)
{
	int id = new_node(P, N_FUNC);
	if (id < 0)
		return -1;
	int fn = -1;
	for (int i = 0; i < F_COUNT_; i++)
		if (strlen(fns[i].name) == nlen && !memcmp(fns[i].name, name, nlen)) {
			fn = i;
			break;
		}
	if (fn < 0) {
		perr(P, "unknown function");
		return -1;
	}
	P->nodes[id].sub = (unsigned char)fn;
	P->nodes[id].a = focus;
	lex(P); /* past '(' */
	int args[4], na = 0;
	if (P->t != T_RPAREN) {
		for (;;) {
			int a = parse_expr(P, 0);
			if (a < 0)
				return -1;
			if (na == 4) {
				perr(P, "too many arguments");
				return -1;
			}
			args[na++] = a;
			if (P->t == T_COMMA) {
				lex(P);
				continue;
			}
			break;
		}
	}
	if (P->t != T_RPAREN) {
		perr(P, "')' expected");
		return -1;
	}
	lex(P);
	if (na < fns[fn].mina || na > fns[fn].maxa) {
		perr(P, "wrong number of arguments");
		return -1;
	}
	P->nodes[id].nargs = (unsigned char)na;
	P->nodes[id].args = (int)P->nargv;
	for (int i = 0; i < na; i++)
		add_arg(P, args[i]);
	return P->rc ? -1 : id;
}

static int parse_term(struct parser *P)
{
	int id;
	switch (P->t) {
	case T_LPAREN:
		lex(P);
		id = parse_expr(P, 0);
		if (id < 0)
			return -1;
		if (P->t != T_RPAREN) {
			perr(P, "')' expected");
			return -1;
		}
		lex(P);
		return id;
	case T_LBRACE:
		lex(P);
		if (P->t != T_RBRACE) {
			perr(P, "'}' expected");
			return -1;
		}
		lex(P);
		return new_node(P, N_EMPTY);
	case T_STR:
		id = new_node(P, N_STR);
		set_str(P, id, P->ts, P->tn, true);
		lex(P);
		return id;
	case T_DATE:
		if (P->rc || !P->tn) {
			perr(P, "empty date literal");
			return -1;
		}
		id = new_node(P, N_STR); /* dates compare as strings */
		set_str(P, id, P->ts[0] == 'T' ? P->ts + 1 : P->ts, P->ts[0] == 'T' ? P->tn - 1 : P->tn, false);
		lex(P);
		return id;
	case T_NUM: {
		bool dec = memchr(P->ts, '.', P->tn) != NULL;
		id = new_node(P, dec ? N_DEC : N_INT);
		if (id < 0)
			return -1;
		char buf[64];
		if (P->tn >= sizeof buf) {
			perr(P, "number too long");
			return -1;
		}
		memcpy(buf, P->ts, P->tn);
		buf[P->tn] = 0;
		if (dec)
			P->nodes[id].d = strtod(buf, NULL);
		else
			P->nodes[id].i = strtoll(buf, NULL, 10);
		P->nodes[id].d = strtod(buf, NULL);
		lex(P);
		/* a quantity literal: number 'unit' or number calendar-word; kept as the number */
		if (P->t == T_STR)
			lex(P);
		else if (P->t == T_IDENT && !P->quoted) {
			static const char *const units[] = {"year", "years", "month", "months", "week", "weeks", "day",
							    "days", "hour", "hours", "minute", "minutes", "second",
							    "seconds", "millisecond", "milliseconds"};
			for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
				if (tok_is(P, units[i])) {
					lex(P);
					break;
				}
		}
		return id;
	}
	case T_EXT:
		id = new_node(P, N_EXT);
		set_str(P, id, P->ts, P->tn, false);
		lex(P);
		return id;
	case T_SPECIAL:
		if (P->tn == 4 && !memcmp(P->ts, "this", 4))
			id = new_node(P, N_THIS);
		else if (P->tn == 5 && !memcmp(P->ts, "index", 5))
			id = new_node(P, N_INDEX);
		else if (P->tn == 5 && !memcmp(P->ts, "total", 5))
			id = new_node(P, N_TOTAL);
		else {
			perr(P, "unknown $ variable");
			return -1;
		}
		lex(P);
		return id;
	case T_IDENT: {
		if (!P->quoted && (tok_is(P, "true") || tok_is(P, "false"))) {
			id = new_node(P, N_BOOL);
			if (id >= 0)
				P->nodes[id].b = tok_is(P, "true") ? 1 : 0;
			lex(P);
			return id;
		}
		const char *s = P->ts;
		size_t n = P->tn;
		bool q = P->quoted;
		lex(P);
		if (P->t == T_LPAREN && !q)
			return parse_call(P, -1, s, n);
		id = new_node(P, N_IDENT);
		set_str(P, id, s, n, false);
		return id;
	}
	default: perr(P, "unexpected token"); return -1;
	}
}

/* binding powers (higher binds tighter) */
static int infix_bp(const struct parser *P, enum bop *op)
{
	switch (P->t) {
	case T_STAR: *op = B_MUL; return 10;
	case T_SLASH: *op = B_DIV; return 10;
	case T_PLUS: *op = B_ADD; return 9;
	case T_MINUS: *op = B_SUB; return 9;
	case T_AMP: *op = B_CONCAT; return 9;
	case T_PIPE: *op = B_UNION; return 7;
	case T_LT: *op = B_LT; return 6;
	case T_GT: *op = B_GT; return 6;
	case T_LE: *op = B_LE; return 6;
	case T_GE: *op = B_GE; return 6;
	case T_EQ: *op = B_EQ; return 5;
	case T_NE: *op = B_NE; return 5;
	case T_EQUIV: *op = B_EQUIV; return 5;
	case T_NEQUIV: *op = B_NEQUIV; return 5;
	case T_IDENT:
		if (P->quoted)
			return -1;
		if (tok_is(P, "div")) { *op = B_IDIV; return 10; }
		if (tok_is(P, "mod")) { *op = B_MOD; return 10; }
		if (tok_is(P, "is") || tok_is(P, "as")) { *op = B_EQ; return 8; }
		if (tok_is(P, "in")) { *op = B_IN; return 4; }
		if (tok_is(P, "contains")) { *op = B_CONTAINS; return 4; }
		if (tok_is(P, "and")) { *op = B_AND; return 3; }
		if (tok_is(P, "or")) { *op = B_OR; return 2; }
		if (tok_is(P, "xor")) { *op = B_XOR; return 2; }
		if (tok_is(P, "implies")) { *op = B_IMPLIES; return 1; }
		return -1;
	default: return -1;
	}
}

static int parse_expr(struct parser *P, int minbp)
{
	if (++P->depth > 200) {
		perr(P, "expression nested too deeply");
		return -1;
	}
	int lhs;
	if (P->t == T_MINUS || P->t == T_PLUS) {
		bool neg = P->t == T_MINUS;
		lex(P);
		int x = parse_expr(P, 11);
		if (x < 0)
			return -1;
		if (neg) {
			lhs = new_node(P, N_NEG);
			if (lhs >= 0)
				P->nodes[lhs].a = x;
		} else {
			lhs = x;
		}
	} else {
		lhs = parse_term(P);
	}
	while (lhs >= 0 && !P->rc) {
		if (P->t == T_DOT) {
			lex(P);
			if (P->t != T_IDENT) {
				perr(P, "name expected after '.'");
				return -1;
			}
			const char *s = P->ts;
			size_t n = P->tn;
			bool q = P->quoted;
			lex(P);
			if (P->t == T_LPAREN && !q) {
				lhs = parse_call(P, lhs, s, n);
			} else {
				int id = new_node(P, N_CHILD);
				if (id >= 0) {
					P->nodes[id].a = lhs;
					set_str(P, id, s, n, false);
				}
				lhs = id;
			}
			continue;
		}
		if (P->t == T_LBRACK) {
			lex(P);
			int ix = parse_expr(P, 0);
			if (ix < 0)
				return -1;
			if (P->t != T_RBRACK) {
				perr(P, "']' expected");
				return -1;
			}
			lex(P);
			int id = new_node(P, N_INDEXER);
			if (id >= 0) {
				P->nodes[id].a = lhs;
				P->nodes[id].b = ix;
			}
			lhs = id;
			continue;
		}
		enum bop op;
		int bp = infix_bp(P, &op);
		if (bp < 0 || bp <= minbp)
			break;
		if (bp == 8) { /* is / as TypeSpecifier */
			bool is = tok_is(P, "is");
			lex(P);
			int id = new_node(P, is ? N_IS : N_AS);
			if (id < 0)
				return -1;
			P->nodes[id].a = lhs;
			if (parse_type_spec(P, id))
				return -1;
			lhs = id;
			continue;
		}
		lex(P);
		int rhs = parse_expr(P, bp);
		if (rhs < 0)
			return -1;
		int id = new_node(P, N_BIN);
		if (id >= 0) {
			P->nodes[id].sub = (unsigned char)op;
			P->nodes[id].a = lhs;
			P->nodes[id].b = rhs;
		}
		lhs = id;
	}
	P->depth--;
	return P->rc ? -1 : lhs;
}

/* Does node id depend on the input collection?  Marks konst bottom-up. */
static bool mark_konst(struct salus_fp_expr *e, int id)
{
	struct node *n = &e->nodes[id];
	bool k;
	switch ((enum nop)n->op) {
	case N_EMPTY:
	case N_BOOL:
	case N_INT:
	case N_DEC:
	case N_STR:
	case N_EXT: k = true; break;
	case N_THIS:
	case N_INDEX:
	case N_TOTAL:
	case N_IDENT: k = false; break;
	case N_CHILD:
	case N_NEG:
	case N_IS:
	case N_AS: k = mark_konst(e, n->a); break;
	case N_INDEXER:
	case N_BIN: {
		bool ka = mark_konst(e, n->a), kb = mark_konst(e, n->b);
		k = ka && kb;
		break;
	}
	case N_FUNC: {
		k = n->a >= 0 ? mark_konst(e, n->a) : false;
		for (int i = 0; i < n->nargs; i++) {
			bool ka = mark_konst(e, e->argv[n->args + i]);
			if (!(fns[n->sub].flags & 3) && !ka)
				k = false;
		}
		if (n->sub == F_NOW || n->sub == F_TODAY || n->sub == F_TRACE)
			k = k && true;
		break;
	}
	default: k = false; break;
	}
	/* memoise only what costs something */
	n->konst = k && (n->op == N_CHILD || n->op == N_FUNC || n->op == N_BIN);
	if (n->konst)
		e->has_konst = true;
	return k;
}

int salus_fp_parse(const char *expr, size_t n, struct salus_fp_expr **out, char *why, size_t why_len)
{
	struct parser P = {.p = expr, .end = expr + n};
	salus_buf_init(&P.pool, 1u << 20);
	struct salus_fp_expr *e = NULL;
	lex(&P);
	int root = P.rc ? -1 : parse_expr(&P, 0);
	if (!P.rc && P.t != T_EOF)
		perr(&P, "unexpected token after the expression");
	if (P.rc)
		goto out_fail;
	e = salus_calloc(1, sizeof *e);
	if (!e || !(e->text = salus_strndup(expr, n))) {
		P.rc = SALUS_ENOMEM;
		goto out_fail;
	}
	e->pool = salus_buf_detach(&P.pool, NULL);
	if (!e->pool) {
		P.rc = SALUS_ENOMEM;
		goto out_fail;
	}
	e->nodes = P.nodes;
	e->nnodes = P.nnodes;
	e->argv = P.argv;
	e->root = root;
	for (size_t i = 0; i < e->nnodes; i++)
		if (e->nodes[i].s)
			e->nodes[i].s = e->pool + ((uintptr_t)e->nodes[i].s - 1);
	mark_konst(e, root);
	*out = e;
	return 0;
out_fail:
	if (e) {
		salus_free(e->text);
		salus_free(e);
	}
	salus_free(P.nodes);
	salus_free(P.argv);
	salus_buf_release(&P.pool);
	if (why && why_len) {
		if (P.rc == SALUS_ENOMEM)
			snprintf(why, why_len, "out of memory");
		else
			snprintf(why, why_len, "FHIRPath syntax error at offset %zu: %s", (size_t)(P.ts - expr),
				 P.err ? P.err : "invalid");
	}
	return P.rc;
}

void salus_fp_free(struct salus_fp_expr *e)
{
	if (!e)
		return;
	salus_free(e->nodes);
	salus_free(e->argv);
	salus_free(e->pool);
	salus_free(e->text);
	salus_free(e);
}

const char *salus_fp_text(const struct salus_fp_expr *e)
{
	return e->text;
}

/* ====================================================================== */
/* cache                                                                  */
/* ====================================================================== */

#define CACHE_SLOTS 8192 /* open addressing, at most half full */
#define CACHE_MAX 4096

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct salus_fp_expr *cache[CACHE_SLOTS];
static size_t cache_n;

static size_t hash_str(const char *s, size_t n)
{
	size_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

int salus_fp_cached(const char *expr, const struct salus_fp_expr **out)
{
	size_t n = strlen(expr), h = hash_str(expr, n) & (CACHE_SLOTS - 1);
	pthread_mutex_lock(&cache_mu);
	for (; cache[h]; h = (h + 1) & (CACHE_SLOTS - 1))
		if (!strcmp(cache[h]->text, expr)) {
			*out = cache[h];
			pthread_mutex_unlock(&cache_mu);
			return 0;
		}
	int rc;
	struct salus_fp_expr *e;
	if (cache_n >= CACHE_MAX) {
		rc = SALUS_ETOOLARGE;
	} else if (!(rc = salus_fp_parse(expr, n, &e, NULL, 0))) {
		cache[h] = e;
		cache_n++;
		*out = e;
	}
	pthread_mutex_unlock(&cache_mu);
	return rc;
}

void salus_fp_cache_clear(void)
{
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		salus_fp_free(cache[i]);
		cache[i] = NULL;
	}
	cache_n = 0;
	pthread_mutex_unlock(&cache_mu);
}

/* ====================================================================== */
/* evaluation                                                             */
/* ====================================================================== */

struct coll {
	struct salus_fp_item *v;
	size_t n, cap;
};

struct hidx {
	size_t slots;
	unsigned tab[]; /* item index + 1; 0 empty */
};

struct env {
	struct salus_fp_ctx *cx;
	const struct salus_fp_expr *e;
	struct salus_fp_item res, root, context;
	struct coll *memo;      /* per node, for konst nodes */
	unsigned char *memo_ok;
	struct hidx **hidx;     /* per node: hash index over a memoised collection */
	long index;             /* $index */
	int depth;
};

typedef struct salus_fp_item item_t;

static int fail(struct env *E, int rc, const char *msg)
{
	if (!E->cx->err)
		E->cx->err = msg;
	return rc;
}

static int step(struct env *E, size_t n)
{
	E->cx->steps += n + 1;
	if (E->cx->steps > SALUS_FP_STEPS_MAX)
		return fail(E, SALUS_ETOOLARGE, "FHIRPath evaluation too costly");
	return 0;
}

static int push(struct env *E, struct coll *c, const item_t *it)
{
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 4;
		item_t *nv = arena_alloc(E->cx, nc * sizeof *nv);
		if (!nv)
			return fail(E, E->cx->rc, "out of memory");
		if (c->n)
			memcpy(nv, c->v, c->n * sizeof *nv);
		c->v = nv;
		c->cap = nc;
	}
	c->v[c->n++] = *it;
	return 0;
}

static void mk_bool(item_t *it, bool b)
{
	memset(it, 0, sizeof *it);
	it->kind = SALUS_FP_BOOL;
	it->tname = "Boolean";
	it->b = b;
}

static int push_bool(struct env *E, struct coll *c, bool b)
{
	item_t it;
	mk_bool(&it, b);
	return push(E, c, &it);
}

static int push_int(struct env *E, struct coll *c, long long v)
{
	item_t it;
	memset(&it, 0, sizeof it);
	it.kind = SALUS_FP_INT;
	it.tname = "Integer";
	it.i = v;
	it.d = (double)v;
	return push(E, c, &it);
}

static int push_str(struct env *E, struct coll *c, const char *s, size_t n, bool copy)
{
	item_t it;
	memset(&it, 0, sizeof it);
	it.kind = SALUS_FP_STR;
	it.tname = "String";
	if (copy) {
		char *d = arena_alloc(E->cx, n + 1);
		if (!d)
			return fail(E, E->cx->rc, "out of memory");
		memcpy(d, s, n);
		d[n] = 0;
		s = d;
	}
	it.s = s;
	it.n = n;
	return push(E, c, &it);
}

/* ---- typing ------------------------------------------------------------ */

static const struct salus_fhir_type *type_named(const char *name)
{
	if (!strncmp(name, "FHIR.", 5))
		name += 5;
	return salus_fhir_type_find(name, strlen(name));
}

static const char *sys_to_fhir(const char *code)
{
	const char *d = strstr(code, "System.");
	if (!d)
		return NULL;
	d += 7;
	if (!strcmp(d, "String")) return "string";
	if (!strcmp(d, "Boolean")) return "boolean";
	if (!strcmp(d, "Integer")) return "integer";
	if (!strcmp(d, "Decimal")) return "decimal";
	if (!strcmp(d, "Date")) return "date";
	if (!strcmp(d, "DateTime")) return "dateTime";
	if (!strcmp(d, "Time")) return "time";
	return "string";
}

static void type_resource(item_t *it, const json_t *j)
{
	const json_t *rt = json_is_object(j) ? json_object_get(j, "resourceType") : NULL;
	const struct salus_fhir_type *t = NULL;
	if (json_is_string(rt) && salus_fhir_is_resource_type(json_string_value(rt), json_string_length(rt)))
		t = salus_fhir_type_find(json_string_value(rt), json_string_length(rt));
	it->type = it->nav_t = t;
	it->nav_e = NULL;
	it->tname = t ? salus_fhir_type_name(t) : "Resource";
}

void salus_fp_item_root(const json_t *resource, struct salus_fp_item *out)
{
	memset(out, 0, sizeof *out);
	out->kind = SALUS_FP_NODE;
	out->j = resource;
	type_resource(out, resource);
}

void salus_fp_item_typed(const json_t *node, const struct salus_fhir_type *type, const struct salus_fhir_elem *elem,
			 struct salus_fp_item *out)
{
	memset(out, 0, sizeof *out);
	out->kind = SALUS_FP_NODE;
	out->j = node;
	out->nav_t = type;
	out->nav_e = elem;
	out->elem = elem;
	if (elem) {
		const struct salus_fhir_type *bb = salus_fhir_type_find("BackboneElement", 15);
		out->type = bb;
		out->tname = "BackboneElement";
	} else {
		out->type = type;
		out->tname = type ? salus_fhir_type_name(type) : "Element";
	}
}

/* Type a child node of element e, chosen type ti (nav context t). */
static void type_child(item_t *it, const struct salus_fhir_type *t, const struct salus_fhir_elem *e, size_t ti)
{
	struct salus_fhir_elem_info ei;
	salus_fhir_elem_get(e, &ei);
	it->elem = e;
	if (ei.content_ref) {
		it->nav_t = t;
		it->nav_e = e;
		it->type = salus_fhir_type_find("BackboneElement", 15);
		it->tname = "BackboneElement";
		return;
	}
	const char *code = salus_fhir_elem_type_code(e, ti);
	if (!code) {
		it->tname = "Element";
		return;
	}
	if ((!strcmp(code, "BackboneElement") || !strcmp(code, "Element")) && salus_fhir_elem_first_child(t, e)) {
		it->nav_t = t;
		it->nav_e = e;
		it->type = salus_fhir_type_find(code, strlen(code));
		it->tname = it->type ? salus_fhir_type_name(it->type) : code;
		return;
	}
	if (!strcmp(code, "Resource")) {
		type_resource(it, it->j);
		return;
	}
	const char *sys = sys_to_fhir(code);
	const struct salus_fhir_type *ct = salus_fhir_type_find(sys ? sys : code, strlen(sys ? sys : code));
	it->type = ct;
	it->nav_t = ct;
	it->nav_e = NULL;
	it->tname = ct ? salus_fhir_type_name(ct) : code;
}

static int push_value(struct env *E, struct coll *out, const json_t *v, const json_t *ext,
		      const struct salus_fhir_type *t, const struct salus_fhir_elem *e, size_t ti)
{
	item_t it;
	if (json_is_array(v) || json_is_array(ext)) {
		size_t n = json_is_array(v) ? json_array_size(v) : 0, m = json_is_array(ext) ? json_array_size(ext) : 0;
		size_t k = n > m ? n : m;
		for (size_t i = 0; i < k; i++) {
			const json_t *vi = i < n ? json_array_get(v, i) : NULL, *xi = i < m ? json_array_get(ext, i) : NULL;
			if (json_is_null(vi))
				vi = NULL;
			if (json_is_null(xi))
				xi = NULL;
			if (!vi && !xi)
				continue;
			memset(&it, 0, sizeof it);
			it.kind = SALUS_FP_NODE;
			it.j = vi;
			it.ext = xi;
			if (e)
				type_child(&it, t, e, ti);
			else
				it.tname = "Element";
			int rc = push(E, out, &it);
			if (rc)
				return rc;
		}
		return step(E, k);
	}
	if (json_is_null(v))
		v = NULL;
	if (!v && !ext)
		return 0;
	memset(&it, 0, sizeof it);
	it.kind = SALUS_FP_NODE;
	it.j = v;
	it.ext = json_is_object(ext) ? ext : NULL;
	if (e)
		type_child(&it, t, e, ti);
	else
		it.tname = "Element";
	return push(E, out, &it);
}

/* The children named `name` of it (FHIRPath member navigation). */
static int child(struct env *E, const item_t *it, const char *name, struct coll *out)
{
	if (it->kind != SALUS_FP_NODE)
		return 0;
	const json_t *obj = it->j;
	if (!json_is_object(obj)) {
		/* a primitive: id and extension live in the "_name" sibling */
		if (it->ext && (!strcmp(name, "extension") || !strcmp(name, "id"))) {
			const json_t *v = json_object_get(it->ext, name);
			const struct salus_fhir_type *el = salus_fhir_type_find("Element", 7);
			const struct salus_fhir_elem *ce = salus_fhir_elem_child(el, NULL, name, strlen(name), NULL);
			return push_value(E, out, v, NULL, el, ce, 0);
		}
		return 0;
	}
	if (!it->nav_t) {
		const json_t *v = json_object_get(obj, name);
		return v ? push_value(E, out, v, NULL, NULL, NULL, 0) : 0;
	}
	size_t nl = strlen(name);
	for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(it->nav_t, it->nav_e); e;
	     e = salus_fhir_elem_next_sibling(e)) {
		struct salus_fhir_elem_info ei;
		salus_fhir_elem_get(e, &ei);
		if (ei.name_len != nl || memcmp(ei.name, name, nl))
			continue;
		if (!ei.choice) {
			char key[128];
			const json_t *v = json_object_get(obj, name), *x = NULL;
			if (nl + 2 <= sizeof key) {
				key[0] = '_';
				memcpy(key + 1, name, nl + 1);
				x = json_object_get(obj, key);
			}
			return push_value(E, out, v, x, it->nav_t, e, 0);
		}
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)(uintptr_t)obj, k, v) {
			size_t kl = strlen(k), ti;
			const char *kk = k[0] == '_' ? k + 1 : k;
			size_t kkl = k[0] == '_' ? kl - 1 : kl;
			if (kkl <= nl || memcmp(kk, name, nl))
				continue;
			if (salus_fhir_elem_child(it->nav_t, it->nav_e, kk, kkl, &ti) != e)
				continue;
			if (k[0] == '_') { /* only when the value itself is absent */
				if (json_object_getn(obj, kk, kkl))
					continue;
				int rc = push_value(E, out, NULL, v, it->nav_t, e, ti);
				if (rc)
					return rc;
				continue;
			}
			char key[128];
			const json_t *x = NULL;
			if (kl + 2 <= sizeof key) {
				key[0] = '_';
				memcpy(key + 1, k, kl + 1);
				x = json_object_get(obj, key);
			}
			int rc = push_value(E, out, v, x, it->nav_t, e, ti);
			if (rc)
				return rc;
		}
		return 0;
	}
	return 0;
}

/* All children (children()). */
static int children(struct env *E, const item_t *it, struct coll *out)
{
	if (it->kind != SALUS_FP_NODE)
		return 0;
	if (!json_is_object(it->j)) {
		if (it->ext) {
			int rc = child(E, it, "id", out);
			return rc ? rc : child(E, it, "extension", out);
		}
		return 0;
	}
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)it->j, k, v) {
		size_t kl = strlen(k), ti = 0;
		if (!strcmp(k, "resourceType"))
			continue;
		const char *kk = k[0] == '_' ? k + 1 : k;
		size_t kkl = k[0] == '_' ? kl - 1 : kl;
		const json_t *x = NULL, *val = v;
		if (k[0] == '_') {
			if (json_object_getn(it->j, kk, kkl))
				continue; /* attached to the value below */
			x = v;
			val = NULL;
		} else {
			char key[128];
			if (kl + 2 <= sizeof key) {
				key[0] = '_';
				memcpy(key + 1, k, kl + 1);
				x = json_object_get(it->j, key);
			}
		}
		const struct salus_fhir_elem *e =
			it->nav_t ? salus_fhir_elem_child(it->nav_t, it->nav_e, kk, kkl, &ti) : NULL;
		int rc = push_value(E, out, val, x, it->nav_t, e, ti);
		if (rc)
			return rc;
	}
	return step(E, json_object_size(it->j));
}

/* ---- values ---------------------------------------------------------- */

enum vk { V_NONE, V_BOOL, V_NUM, V_STR, V_OBJ };
struct val {
	enum vk k;
	bool b;
	bool isint;
	long long i;
	double d;
	const char *s;
	size_t n;
	const json_t *j;
};

static struct val value_of(const item_t *it)
{
	struct val v = {0};
	switch (it->kind) {
	case SALUS_FP_BOOL: v.k = V_BOOL; v.b = it->b; return v;
	case SALUS_FP_INT: v.k = V_NUM; v.isint = true; v.i = it->i; v.d = (double)it->i; return v;
	case SALUS_FP_DEC: v.k = V_NUM; v.d = it->d; return v;
	case SALUS_FP_STR: v.k = V_STR; v.s = it->s; v.n = it->n; return v;
	case SALUS_FP_REF: v.k = V_NONE; return v;
	case SALUS_FP_NODE: break;
	}
	const json_t *j = it->j;
	if (json_is_string(j)) {
		v.k = V_STR;
		v.s = json_string_value(j);
		v.n = json_string_length(j);
	} else if (json_is_integer(j)) {
		v.k = V_NUM;
		v.isint = true;
		v.i = json_integer_value(j);
		v.d = (double)v.i;
	} else if (json_is_real(j)) {
		v.k = V_NUM;
		v.d = json_real_value(j);
	} else if (json_is_boolean(j)) {
		v.k = V_BOOL;
		v.b = json_is_true(j);
	} else if (j) {
		v.k = V_OBJ;
		v.j = j;
	}
	return v;
}

static bool is_datelike(const char *s, size_t n)
{
	return n >= 4 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
	       isdigit((unsigned char)s[3]) && (n == 4 || s[4] == '-');
}

/* -1, 0, 1, or 2 when not comparable */
static int cmp_vals(const struct val *a, const struct val *b)
{
	if (a->k == V_NUM && b->k == V_NUM) {
		if (a->isint && b->isint)
			return a->i < b->i ? -1 : a->i > b->i;
		return a->d < b->d ? -1 : a->d > b->d;
	}
	if (a->k == V_STR && b->k == V_STR) {
		size_t m = a->n < b->n ? a->n : b->n;
		int c = memcmp(a->s, b->s, m);
		if (c)
			return c < 0 ? -1 : 1;
		if (a->n == b->n)
			return 0;
		if (is_datelike(a->s, a->n) && is_datelike(b->s, b->n))
			return 2; /* different precision, same prefix: undecidable */
		return a->n < b->n ? -1 : 1;
	}
	if (a->k == V_BOOL && b->k == V_BOOL)
		return a->b == b->b ? 0 : a->b ? 1 : -1;
	return 2;
}

static bool items_equal(const item_t *x, const item_t *y, bool equiv)
{
	if (x->kind == SALUS_FP_NODE && y->kind == SALUS_FP_NODE && x->j == y->j && x->ext == y->ext)
		return true;
	struct val a = value_of(x), b = value_of(y);
	if (a.k == V_OBJ || b.k == V_OBJ)
		return a.k == b.k && json_equal(a.j, b.j);
	if (a.k == V_NONE || b.k == V_NONE)
		return a.k == b.k && x->type == y->type;
	if (equiv && a.k == V_STR && b.k == V_STR) {
		/* case-insensitive, whitespace-normalised */
		size_t i = 0, j = 0;
		for (;;) {
			while (i < a.n && isspace((unsigned char)a.s[i]))
				i++;
			while (j < b.n && isspace((unsigned char)b.s[j]))
				j++;
			if (i == a.n || j == b.n)
				return i == a.n && j == b.n;
			if (tolower((unsigned char)a.s[i]) != tolower((unsigned char)b.s[j]))
				return false;
			i++;
			j++;
		}
	}
	int c = cmp_vals(&a, &b);
	return c == 0;
}

static size_t item_hash(const item_t *it)
{
	struct val v = value_of(it);
	switch (v.k) {
	case V_STR: return hash_str(v.s, v.n);
	case V_NUM: return v.isint ? (size_t)v.i * 31 : (size_t)(long long)v.d * 31;
	case V_BOOL: return v.b ? 7 : 3;
	case V_OBJ: return json_object_size(v.j) * 131 + json_array_size(v.j);
	default: return (size_t)(uintptr_t)it->type;
	}
}

/* Append the items of src to dst, skipping equal ones (union / distinct). */
static int add_distinct(struct env *E, struct coll *dst, const struct coll *src)
{
	size_t total = dst->n + src->n;
	if (total <= 16) {
		for (size_t i = 0; i < src->n; i++) {
			bool dup = false;
			for (size_t k = 0; k < dst->n && !dup; k++)
				dup = items_equal(&dst->v[k], &src->v[i], false);
			if (!dup && push(E, dst, &src->v[i]))
				return E->cx->rc;
		}
		return step(E, total * total / 4);
	}
	size_t slots = 32;
	while (slots < total * 2)
		slots *= 2;
	unsigned *tab = arena_alloc(E->cx, slots * sizeof *tab); /* index+1, 0 empty */
	if (!tab)
		return fail(E, E->cx->rc, "out of memory");
	memset(tab, 0, slots * sizeof *tab);
	struct coll res = {0};
	for (int pass = 0; pass < 2; pass++) {
		const struct coll *c = pass ? src : dst;
		for (size_t i = 0; i < c->n; i++) {
			size_t h = item_hash(&c->v[i]) & (slots - 1);
			bool dup = false;
			for (; tab[h]; h = (h + 1) & (slots - 1))
				if (items_equal(&res.v[tab[h] - 1], &c->v[i], false)) {
					dup = true;
					break;
				}
			if (dup)
				continue;
			if (push(E, &res, &c->v[i]))
				return E->cx->rc;
			tab[h] = (unsigned)res.n;
		}
	}
	*dst = res;
	return step(E, total);
}

/* FHIRPath singleton-to-boolean: 1, 0, or -1 (empty).  Error if > 1 item. */
static int to_bool(struct env *E, const struct coll *c, int *out)
{
	if (c->n == 0) {
		*out = -1;
		return 0;
	}
	if (c->n > 1)
		return fail(E, SALUS_EINVALID, "a boolean was expected, got a collection");
	struct val v = value_of(&c->v[0]);
	*out = v.k == V_BOOL ? v.b : 1;
	return 0;
}

static const char *str_arg(const struct coll *c, size_t *n)
{
	if (c->n != 1)
		return NULL;
	struct val v = value_of(&c->v[0]);
	if (v.k != V_STR)
		return NULL;
	*n = v.n;
	return v.s;
}

static bool item_is_type(const item_t *it, const char *name)
{
	if (!strncmp(name, "System.", 7)) {
		const char *s = name + 7;
		switch (it->kind) {
		case SALUS_FP_BOOL: return !strcmp(s, "Boolean");
		case SALUS_FP_INT: return !strcmp(s, "Integer");
		case SALUS_FP_DEC: return !strcmp(s, "Decimal");
		case SALUS_FP_STR: return !strcmp(s, "String");
		default: return false;
		}
	}
	if (it->kind != SALUS_FP_NODE && it->kind != SALUS_FP_REF) {
		const char *s = !strncmp(name, "FHIR.", 5) ? NULL : name; /* unqualified System names */
		return s && !strcmp(s, it->tname);
	}
	const struct salus_fhir_type *t = type_named(name);
	if (!t)
		return false;
	if (it->type)
		return salus_fhir_type_is_a(it->type, t);
	return !strcmp(it->tname, salus_fhir_type_name(t));
}

bool salus_fp_item_is(const struct salus_fp_item *it, const char *name)
{
	return item_is_type(it, name);
}

const char *salus_fp_item_str(const struct salus_fp_item *it, size_t *n)
{
	if (it->kind == SALUS_FP_STR) {
		if (n)
			*n = it->n;
		return it->s;
	}
	if (it->kind == SALUS_FP_NODE && json_is_string(it->j)) {
		if (n)
			*n = json_string_length(it->j);
		return json_string_value(it->j);
	}
	return NULL;
}

/* resolve(): a marker typed by the reference's target type. */
static int resolve_item(struct env *E, const item_t *it, struct coll *out)
{
	const char *ref = NULL;
	size_t n = 0;
	if (it->kind == SALUS_FP_NODE && json_is_object(it->j)) {
		const json_t *r = json_object_get(it->j, "reference");
		if (json_is_string(r)) {
			ref = json_string_value(r);
			n = json_string_length(r);
		}
	} else {
		ref = salus_fp_item_str(it, &n); /* canonical / uri */
	}
	if (!ref || !n)
		return 0;
	if (ref[0] == '#') {
		const json_t *cont = json_object_get(E->root.j ? E->root.j : E->res.j, "contained");
		size_t i;
		json_t *c;
		json_array_foreach (cont, i, c) {
			const json_t *id = json_object_get(c, "id");
			if (json_is_string(id) && json_string_length(id) == n - 1 && !memcmp(json_string_value(id), ref + 1, n - 1)) {
				item_t x;
				salus_fp_item_root(c, &x);
				return push(E, out, &x);
			}
		}
		return 0;
	}
	/* strip a query and "/_history/v", then take the segment before the id */
	const char *q = memchr(ref, '?', n);
	if (q)
		return 0; /* conditional reference: unknown */
	size_t end = n;
	const char *h = NULL;
	for (size_t i = 0; i + 10 <= n; i++)
		if (!memcmp(ref + i, "/_history/", 10))
			h = ref + i;
	if (h)
		end = (size_t)(h - ref);
	size_t slash = end;
	while (slash > 0 && ref[slash - 1] != '/')
		slash--;
	if (slash < 2)
		return 0;
	size_t ts = slash - 1;
	while (ts > 0 && ref[ts - 1] != '/')
		ts--;
	if (!salus_fhir_is_resource_type(ref + ts, slash - 1 - ts))
		return 0;
	item_t x;
	memset(&x, 0, sizeof x);
	x.kind = SALUS_FP_REF;
	x.type = salus_fhir_type_find(ref + ts, slash - 1 - ts);
	x.tname = salus_fhir_type_name(x.type);
	return push(E, out, &x);
}

static int ev(struct env *E, int id, const struct coll *in, struct coll *out);

static int ev_arg(struct env *E, const struct node *n, int k, const struct coll *in, struct coll *out)
{
	memset(out, 0, sizeof *out);
	return ev(E, E->e->argv[n->args + k], in, out);
}

static const char *type_arg(struct env *E, const struct node *n)
{
	const struct node *a = &E->e->nodes[E->e->argv[n->args]];
	if (a->op == N_IDENT)
		return a->s;
	if (a->op == N_CHILD && E->e->nodes[a->a].op == N_IDENT) {
		/* FHIR.Quantity / System.String: rebuild the qualified name in the arena */
		const char *q = E->e->nodes[a->a].s;
		size_t ql = strlen(q), nl = strlen(a->s);
		char *s = arena_alloc(E->cx, ql + nl + 2);
		if (!s)
			return NULL;
		memcpy(s, q, ql);
		s[ql] = '.';
		memcpy(s + ql + 1, a->s, nl + 1);
		return s;
	}
	return NULL;
}

static int descend(struct env *E, const item_t *it, struct coll *out)
{
	size_t start = out->n;
	int rc = children(E, it, out);
	/* breadth over the newly added items (out may grow while we walk it) */
	for (size_t i = start; !rc && i < out->n; i++) {
		item_t cur = out->v[i];
		rc = children(E, &cur, out);
	}
	return rc;
}

static int ev_func(struct env *E, const struct node *n, const struct coll *in, struct coll *out)
{
	struct coll fc = {0}, a0 = {0}, a1 = {0};
	const struct coll *f = in;
	int rc = 0, b;
	if (n->a >= 0) {
		rc = ev(E, n->a, in, &fc);
		if (rc)
			return rc;
		f = &fc;
	}
	if ((rc = step(E, f->n)))
		return rc;
	switch ((enum fn)n->sub) {
	case F_EMPTY: return push_bool(E, out, f->n == 0);
	case F_EXISTS:
		if (!n->nargs)
			return push_bool(E, out, f->n > 0);
		__attribute__((fallthrough)); /* exists(crit) = where(crit).exists() */
	case F_WHERE:
	case F_ALL:
	case F_SELECT:
	case F_REPEAT: {
		long save = E->index;
		bool all = true, any = false;
		for (size_t i = 0; i < f->n && !rc; i++) {
			struct coll one = {.v = &f->v[i], .n = 1, .cap = 1}, r = {0};
			E->index = (long)i;
			rc = ev(E, E->e->argv[n->args], &one, &r);
			if (rc)
				break;
			if (n->sub == F_SELECT) {
				for (size_t k = 0; k < r.n && !rc; k++)
					rc = push(E, out, &r.v[k]);
				continue;
			}
			if (n->sub == F_REPEAT) {
				for (size_t k = 0; k < r.n && !rc; k++)
					rc = push(E, out, &r.v[k]);
				continue;
			}
			rc = to_bool(E, &r, &b);
			if (rc)
				break;
			if (b == 1) {
				any = true;
				if (n->sub == F_WHERE)
					rc = push(E, out, &f->v[i]);
			} else {
				all = false;
			}
		}
		E->index = save;
		if (rc)
			return rc;
		if (n->sub == F_ALL)
			return push_bool(E, out, all);
		if (n->sub == F_EXISTS)
			return push_bool(E, out, any);
		return 0;
	}
	case F_NOT:
		if ((rc = to_bool(E, f, &b)))
			return rc;
		return b < 0 ? 0 : push_bool(E, out, !b);
	case F_FIRST: return f->n ? push(E, out, &f->v[0]) : 0;
	case F_LAST: return f->n ? push(E, out, &f->v[f->n - 1]) : 0;
	case F_TAIL:
		for (size_t i = 1; i < f->n && !rc; i++)
			rc = push(E, out, &f->v[i]);
		return rc;
	case F_SKIP:
	case F_TAKE: {
		if ((rc = ev_arg(E, n, 0, in, &a0)))
			return rc;
		struct val v = a0.n == 1 ? value_of(&a0.v[0]) : (struct val){0};
		if (v.k != V_NUM || !v.isint)
			return fail(E, SALUS_EINVALID, "skip/take need an integer");
		long long k = v.i < 0 ? 0 : v.i;
		for (size_t i = 0; i < f->n && !rc; i++)
			if (n->sub == F_SKIP ? (long long)i >= k : (long long)i < k)
				rc = push(E, out, &f->v[i]);
		return rc;
	}
	case F_COUNT: return push_int(E, out, (long long)f->n);
	case F_DISTINCT: {
		struct coll d = {0};
		if ((rc = add_distinct(E, &d, f)))
			return rc;
		for (size_t i = 0; i < d.n && !rc; i++)
			rc = push(E, out, &d.v[i]);
		return rc;
	}
	case F_ISDISTINCT: {
		struct coll d = {0};
		if ((rc = add_distinct(E, &d, f)))
			return rc;
		return push_bool(E, out, d.n == f->n);
	}
	case F_HASVALUE:
		if (f->n != 1)
			return push_bool(E, out, false);
		{
			struct val v = value_of(&f->v[0]);
			return push_bool(E, out, v.k == V_BOOL || v.k == V_NUM || v.k == V_STR);
		}
	case F_GETVALUE:
		if (f->n == 1) {
			struct val v = value_of(&f->v[0]);
			if (v.k == V_BOOL || v.k == V_NUM || v.k == V_STR)
				return push(E, out, &f->v[0]);
		}
		return 0;
	case F_CHILDREN:
		for (size_t i = 0; i < f->n && !rc; i++)
			rc = children(E, &f->v[i], out);
		return rc;
	case F_DESCENDANTS:
		for (size_t i = 0; i < f->n && !rc; i++)
			rc = descend(E, &f->v[i], out);
		return rc;
	case F_OFTYPE:
	case F_AS:
	case F_IS: {
		const char *tn = type_arg(E, n);
		if (!tn)
			return fail(E, E->cx->rc ? E->cx->rc : SALUS_EINVALID, "type name expected");
		if (n->sub == F_IS) {
			if (f->n == 0)
				return 0;
			if (f->n > 1)
				return fail(E, SALUS_EINVALID, "is() needs a single item");
			return push_bool(E, out, item_is_type(&f->v[0], tn));
		}
		for (size_t i = 0; i < f->n && !rc; i++)
			if (item_is_type(&f->v[i], tn))
				rc = push(E, out, &f->v[i]);
		return rc;
	}
	case F_ISTYPE:
		for (size_t i = 0; i < f->n && !rc; i++)
			rc = push_str(E, out, f->v[i].tname, strlen(f->v[i].tname), false);
		return rc;
	case F_RESOLVE:
		for (size_t i = 0; i < f->n && !rc; i++)
			rc = resolve_item(E, &f->v[i], out);
		return rc;
	case F_EXTENSION:
	case F_HASEXT: {
		size_t ul;
		if ((rc = ev_arg(E, n, 0, in, &a0)))
			return rc;
		const char *url = str_arg(&a0, &ul);
		if (!url)
			return fail(E, SALUS_EINVALID, "extension() needs a string url");
		bool found = false;
		for (size_t i = 0; i < f->n && !rc; i++) {
			struct coll ex = {0};
			if ((rc = child(E, &f->v[i], "extension", &ex)))
				break;
			for (size_t k = 0; k < ex.n && !rc; k++) {
				const json_t *u = json_is_object(ex.v[k].j) ? json_object_get(ex.v[k].j, "url") : NULL;
				if (json_is_string(u) && json_string_length(u) == ul && !memcmp(json_string_value(u), url, ul)) {
					found = true;
					if (n->sub == F_EXTENSION)
						rc = push(E, out, &ex.v[k]);
				}
			}
		}
		if (rc)
			return rc;
		return n->sub == F_HASEXT ? push_bool(E, out, found) : 0;
	}
	case F_STARTSWITH:
	case F_ENDSWITH:
	case F_CONTAINSF:
	case F_MATCHES:
	case F_INDEXOF: {
		size_t sl = 0, pl = 0;
		if (f->n == 0)
			return 0;
		const char *s = str_arg(f, &sl);
		if (!s)
			return f->n > 1 ? fail(E, SALUS_EINVALID, "string function on a collection") : 0;
		if ((rc = ev_arg(E, n, 0, in, &a0)))
			return rc;
		if (a0.n == 0)
			return 0;
		const char *p = str_arg(&a0, &pl);
		if (!p)
			return fail(E, SALUS_EINVALID, "string argument expected");
		switch ((enum fn)n->sub) {
		case F_STARTSWITH: return push_bool(E, out, pl <= sl && !memcmp(s, p, pl));
		case F_ENDSWITH: return push_bool(E, out, pl <= sl && !memcmp(s + sl - pl, p, pl));
		case F_CONTAINSF:
		case F_INDEXOF: {
			long long at = pl == 0 ? 0 : -1;
			for (size_t i = 0; pl && i + pl <= sl; i++)
				if (!memcmp(s + i, p, pl)) {
					at = (long long)i;
					break;
				}
			return n->sub == F_INDEXOF ? push_int(E, out, at) : push_bool(E, out, at >= 0);
		}
		default: {
			/* POSIX ERE, anchored at neither end (FHIRPath matches() is a partial match) */
			char *pat = arena_alloc(E->cx, pl + 1), *str = arena_alloc(E->cx, sl + 1);
			if (!pat || !str)
				return fail(E, E->cx->rc, "out of memory");
			memcpy(pat, p, pl);
			pat[pl] = 0;
			memcpy(str, s, sl);
			str[sl] = 0;
			regex_t re;
			if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB))
				return fail(E, SALUS_EINVALID, "invalid regular expression");
			int m = regexec(&re, str, 0, NULL, 0);
			regfree(&re);
			return push_bool(E, out, m == 0);
		}
		}
	}
	case F_LENGTH:
	case F_UPPER:
	case F_LOWER:
	case F_TOSTRING:
	case F_TOINTEGER: {
		if (f->n == 0)
			return 0;
		if (f->n > 1)
			return fail(E, SALUS_EINVALID, "function needs a single item");
		struct val v = value_of(&f->v[0]);
		if (n->sub == F_TOSTRING) {
			char buf[64];
			if (v.k == V_STR)
				return push_str(E, out, v.s, v.n, false);
			if (v.k == V_BOOL)
				return push_str(E, out, v.b ? "true" : "false", v.b ? 4 : 5, false);
			if (v.k == V_NUM) {
				int k = v.isint ? snprintf(buf, sizeof buf, "%lld", v.i) : snprintf(buf, sizeof buf, "%.17g", v.d);
				return push_str(E, out, buf, (size_t)k, true);
			}
			return 0;
		}
		if (n->sub == F_TOINTEGER) {
			if (v.k == V_NUM && v.isint)
				return push_int(E, out, v.i);
			if (v.k == V_BOOL)
				return push_int(E, out, v.b);
			if (v.k == V_STR && v.n && v.n < 19) {
				long long x = 0;
				size_t i = v.s[0] == '-' || v.s[0] == '+';
				if (i == v.n)
					return 0;
				for (; i < v.n; i++) {
					if (!isdigit((unsigned char)v.s[i]))
						return 0;
					x = x * 10 + (v.s[i] - '0');
				}
				return push_int(E, out, v.s[0] == '-' ? -x : x);
			}
			return 0;
		}
		if (v.k != V_STR)
			return 0;
		if (n->sub == F_LENGTH)
			return push_int(E, out, (long long)v.n);
		char *d = arena_alloc(E->cx, v.n + 1);
		if (!d)
			return fail(E, E->cx->rc, "out of memory");
		for (size_t i = 0; i < v.n; i++)
			d[i] = (char)(n->sub == F_UPPER ? toupper((unsigned char)v.s[i]) : tolower((unsigned char)v.s[i]));
		d[v.n] = 0;
		return push_str(E, out, d, v.n, false);
	}
	case F_SUBSTRING: {
		size_t sl;
		if (f->n == 0)
			return 0;
		const char *s = str_arg(f, &sl);
		if (!s)
			return 0;
		if ((rc = ev_arg(E, n, 0, in, &a0)))
			return rc;
		struct val st = a0.n == 1 ? value_of(&a0.v[0]) : (struct val){0};
		if (st.k != V_NUM || !st.isint)
			return 0;
		long long len = -1;
		if (n->nargs > 1) {
			if ((rc = ev_arg(E, n, 1, in, &a1)))
				return rc;
			struct val ln = a1.n == 1 ? value_of(&a1.v[0]) : (struct val){0};
			if (ln.k == V_NUM && ln.isint)
				len = ln.i < 0 ? 0 : ln.i;
		}
		if (st.i < 0 || (size_t)st.i >= sl)
			return 0;
		size_t rem = sl - (size_t)st.i;
		if (len >= 0 && (size_t)len < rem)
			rem = (size_t)len;
		return push_str(E, out, s + st.i, rem, false);
	}
	case F_REPLACE: {
		size_t sl = 0, pl = 0, rl = 0;
		const char *s = str_arg(f, &sl);
		if (!s)
			return 0;
		if ((rc = ev_arg(E, n, 0, in, &a0)) || (rc = ev_arg(E, n, 1, in, &a1)))
			return rc;
		const char *p = str_arg(&a0, &pl), *r = str_arg(&a1, &rl);
		if (!p || !r)
			return 0;
		struct salus_buf tmp;
		salus_buf_init(&tmp, SALUS_FP_ARENA_MAX);
		for (size_t i = 0; i < sl && !rc;) {
			if (pl && i + pl <= sl && !memcmp(s + i, p, pl)) {
				rc = salus_buf_add(&tmp, r, rl);
				i += pl;
			} else {
				rc = salus_buf_addc(&tmp, s[i++]);
			}
		}
		if (!rc)
			rc = push_str(E, out, tmp.p, tmp.n, true);
		salus_buf_release(&tmp);
		return rc ? fail(E, rc, "out of memory") : 0;
	}
	case F_INTERSECT:
	case F_EXCLUDE:
	case F_SUBSETOF:
	case F_SUPERSETOF: {
		if ((rc = ev_arg(E, n, 0, in, &a0)))
			return rc;
		const struct coll *x = n->sub == F_SUPERSETOF ? &a0 : f, *y = n->sub == F_SUPERSETOF ? f : &a0;
		bool subset = true;
		if ((rc = step(E, x->n * y->n)))
			return rc;
		for (size_t i = 0; i < x->n && !rc; i++) {
			bool in_y = false;
			for (size_t k = 0; k < y->n && !in_y; k++)
				in_y = items_equal(&x->v[i], &y->v[k], false);
			if (!in_y)
				subset = false;
			if (n->sub == F_INTERSECT && in_y) {
				bool dup = false;
				for (size_t k = 0; k < out->n && !dup; k++)
					dup = items_equal(&out->v[k], &x->v[i], false);
				if (!dup)
					rc = push(E, out, &x->v[i]);
			} else if (n->sub == F_EXCLUDE && !in_y) {
				rc = push(E, out, &x->v[i]);
			}
		}
		if (rc)
			return rc;
		return n->sub == F_SUBSETOF || n->sub == F_SUPERSETOF ? push_bool(E, out, subset) : 0;
	}
	case F_UNION:
	case F_COMBINE: {
		if ((rc = ev_arg(E, n, 0, in, &a0)))
			return rc;
		if (n->sub == F_COMBINE) {
			for (size_t i = 0; i < f->n && !rc; i++)
				rc = push(E, out, &f->v[i]);
			for (size_t i = 0; i < a0.n && !rc; i++)
				rc = push(E, out, &a0.v[i]);
			return rc;
		}
		struct coll d = {0};
		if ((rc = add_distinct(E, &d, f)) || (rc = add_distinct(E, &d, &a0)))
			return rc;
		for (size_t i = 0; i < d.n && !rc; i++)
			rc = push(E, out, &d.v[i]);
		return rc;
	}
	case F_SINGLE:
		if (f->n > 1)
			return fail(E, SALUS_EINVALID, "single() on a collection");
		return f->n ? push(E, out, &f->v[0]) : 0;
	case F_IIF: {
		if ((rc = ev_arg(E, n, 0, f, &a0)) || (rc = to_bool(E, &a0, &b)))
			return rc;
		if (b == 1)
			return ev(E, E->e->argv[n->args + 1], f, out);
		if (n->nargs > 2)
			return ev(E, E->e->argv[n->args + 2], f, out);
		return 0;
	}
	case F_TRACE:
		for (size_t i = 0; i < f->n && !rc; i++)
			rc = push(E, out, &f->v[i]);
		return rc;
	case F_ALLTRUE:
	case F_ANYTRUE:
	case F_ALLFALSE:
	case F_ANYFALSE: {
		bool all = true, any = false, want = n->sub == F_ALLTRUE || n->sub == F_ANYTRUE;
		for (size_t i = 0; i < f->n; i++) {
			struct val v = value_of(&f->v[i]);
			bool hit = v.k == V_BOOL && v.b == want;
			all = all && hit;
			any = any || hit;
		}
		return push_bool(E, out, n->sub == F_ALLTRUE || n->sub == F_ALLFALSE ? all : any);
	}
	case F_MEMBEROF:
	case F_CONFORMSTO: return 0; /* needs a terminology / profile engine: unknown */
	case F_HTMLCHECKS: return push_bool(E, out, true);
	case F_TODAY:
	case F_NOW: return 0; /* not used by invariants or search expressions here */
	case F_ABS: {
		if (f->n != 1)
			return 0;
		struct val v = value_of(&f->v[0]);
		if (v.k != V_NUM)
			return 0;
		if (v.isint)
			return push_int(E, out, v.i < 0 ? -v.i : v.i);
		item_t it;
		memset(&it, 0, sizeof it);
		it.kind = SALUS_FP_DEC;
		it.tname = "Decimal";
		it.d = fabs(v.d);
		return push(E, out, &it);
	}
	case F_COUNT_: break;
	}
	return fail(E, SALUS_EINVALID, "unsupported function");
}

static int arith(struct env *E, enum bop op, const struct coll *l, const struct coll *r, struct coll *out)
{
	if (op == B_CONCAT) {
		size_t ln = 0, rn = 0;
		const char *ls = l->n ? str_arg(l, &ln) : "", *rs = r->n ? str_arg(r, &rn) : "";
		if (!ls || !rs)
			return fail(E, SALUS_EINVALID, "& needs strings");
		char *d = arena_alloc(E->cx, ln + rn + 1);
		if (!d)
			return fail(E, E->cx->rc, "out of memory");
		memcpy(d, ls, ln);
		memcpy(d + ln, rs, rn);
		d[ln + rn] = 0;
		return push_str(E, out, d, ln + rn, false);
	}
	if (l->n == 0 || r->n == 0)
		return 0;
	if (l->n > 1 || r->n > 1)
		return fail(E, SALUS_EINVALID, "arithmetic on a collection");
	struct val a = value_of(&l->v[0]), b = value_of(&r->v[0]);
	if (op == B_ADD && a.k == V_STR && b.k == V_STR) {
		char *d = arena_alloc(E->cx, a.n + b.n + 1);
		if (!d)
			return fail(E, E->cx->rc, "out of memory");
		memcpy(d, a.s, a.n);
		memcpy(d + a.n, b.s, b.n);
		d[a.n + b.n] = 0;
		return push_str(E, out, d, a.n + b.n, false);
	}
	if (a.k != V_NUM || b.k != V_NUM)
		return 0; /* dates/quantities: not supported, empty */
	if (a.isint && b.isint && op != B_DIV) {
		long long x = a.i, y = b.i, z;
		switch (op) {
		case B_ADD: if (__builtin_add_overflow(x, y, &z)) return 0; break;
		case B_SUB: if (__builtin_sub_overflow(x, y, &z)) return 0; break;
		case B_MUL: if (__builtin_mul_overflow(x, y, &z)) return 0; break;
		case B_IDIV: if (!y || (x == LLONG_MIN && y == -1)) return 0; z = x / y; break;
		case B_MOD: if (!y || (x == LLONG_MIN && y == -1)) return 0; z = x % y; break;
		default: return 0;
		}
		return push_int(E, out, z);
	}
	double x = a.d, y = b.d, z;
	switch (op) {
	case B_ADD: z = x + y; break;
	case B_SUB: z = x - y; break;
	case B_MUL: z = x * y; break;
	case B_DIV: if (y == 0) return 0; z = x / y; break;
	case B_IDIV: if (y == 0) return 0; return push_int(E, out, (long long)trunc(x / y));
	case B_MOD: if (y == 0) return 0; z = fmod(x, y); break;
	default: return 0;
	}
	item_t it;
	memset(&it, 0, sizeof it);
	it.kind = SALUS_FP_DEC;
	it.tname = "Decimal";
	it.d = z;
	return push(E, out, &it);
}

/* `x in set` where set is a memoised (input-independent) collection: a hash
 * index over it is built once per evaluation, so dom-3's
 * `'#'+id in %resource.descendants().reference` stays linear. */
static int in_indexed(struct env *E, int set_id, const struct coll *set, const item_t *x, struct coll *out)
{
	struct hidx *h = E->hidx[set_id];
	if (!h) {
		size_t slots = 64;
		while (slots < set->n * 2)
			slots *= 2;
		h = arena_alloc(E->cx, sizeof *h + slots * sizeof(unsigned));
		if (!h)
			return fail(E, E->cx->rc, "out of memory");
		h->slots = slots;
		memset(h->tab, 0, slots * sizeof(unsigned));
		for (size_t i = 0; i < set->n; i++) {
			size_t k = item_hash(&set->v[i]) & (slots - 1);
			while (h->tab[k])
				k = (k + 1) & (slots - 1);
			h->tab[k] = (unsigned)i + 1;
		}
		E->hidx[set_id] = h;
		int rc = step(E, set->n);
		if (rc)
			return rc;
	}
	for (size_t k = item_hash(x) & (h->slots - 1); h->tab[k]; k = (k + 1) & (h->slots - 1))
		if (items_equal(x, &set->v[h->tab[k] - 1], false))
			return push_bool(E, out, true);
	return push_bool(E, out, false);
}

static int ev_bin(struct env *E, const struct node *n, const struct coll *in, struct coll *out)
{
	struct coll l = {0}, r = {0};
	enum bop op = (enum bop)n->sub;
	int rc = ev(E, n->a, in, &l), lb, rb;
	if (rc)
		return rc;
	if (op == B_AND || op == B_OR || op == B_IMPLIES || op == B_XOR) {
		if ((rc = to_bool(E, &l, &lb)))
			return rc;
		if ((op == B_AND && lb == 0))
			return push_bool(E, out, false);
		if (op == B_OR && lb == 1)
			return push_bool(E, out, true);
		if (op == B_IMPLIES && lb == 0)
			return push_bool(E, out, true);
		if ((rc = ev(E, n->b, in, &r)) || (rc = to_bool(E, &r, &rb)))
			return rc;
		switch (op) {
		case B_AND:
			if (rb == 0)
				return push_bool(E, out, false);
			return lb == 1 && rb == 1 ? push_bool(E, out, true) : 0;
		case B_OR:
			if (rb == 1)
				return push_bool(E, out, true);
			return lb == 0 && rb == 0 ? push_bool(E, out, false) : 0;
		case B_XOR: return lb < 0 || rb < 0 ? 0 : push_bool(E, out, lb != rb);
		default: /* implies, lb is true or empty */
			if (rb == 1)
				return push_bool(E, out, true);
			return lb == 1 ? (rb < 0 ? 0 : push_bool(E, out, false)) : 0;
		}
	}
	if ((rc = ev(E, n->b, in, &r)))
		return rc;
	bool indexed = (op == B_IN || op == B_CONTAINS) && E->memo_ok && (op == B_IN ? r.n : l.n) > 32 &&
		       E->e->nodes[op == B_IN ? n->b : n->a].konst;
	if (!indexed && (rc = step(E, l.n + r.n)))
		return rc;
	switch (op) {
	case B_UNION: {
		struct coll d = {0};
		if ((rc = add_distinct(E, &d, &l)) || (rc = add_distinct(E, &d, &r)))
			return rc;
		for (size_t i = 0; i < d.n && !rc; i++)
			rc = push(E, out, &d.v[i]);
		return rc;
	}
	case B_EQ:
	case B_NE:
	case B_EQUIV:
	case B_NEQUIV: {
		bool eqv = op == B_EQUIV || op == B_NEQUIV;
		if (!eqv && (l.n == 0 || r.n == 0))
			return 0;
		bool eq = l.n == r.n;
		for (size_t i = 0; i < l.n && eq; i++)
			eq = items_equal(&l.v[i], &r.v[i], eqv);
		if (!eqv && l.n == 1 && r.n == 1) {
			struct val a = value_of(&l.v[0]), b = value_of(&r.v[0]);
			if (a.k == V_STR && b.k == V_STR && cmp_vals(&a, &b) == 2)
				return 0; /* dates of different precision */
		}
		return push_bool(E, out, (op == B_EQ || op == B_EQUIV) ? eq : !eq);
	}
	case B_LT:
	case B_GT:
	case B_LE:
	case B_GE: {
		if (l.n == 0 || r.n == 0)
			return 0;
		if (l.n > 1 || r.n > 1)
			return fail(E, SALUS_EINVALID, "comparison of collections");
		struct val a = value_of(&l.v[0]), b = value_of(&r.v[0]);
		int c = cmp_vals(&a, &b);
		if (c == 2)
			return 0;
		bool res = op == B_LT ? c < 0 : op == B_GT ? c > 0 : op == B_LE ? c <= 0 : c >= 0;
		return push_bool(E, out, res);
	}
	case B_IN:
	case B_CONTAINS: {
		const struct coll *x = op == B_IN ? &l : &r, *set = op == B_IN ? &r : &l;
		if (x->n == 0)
			return 0;
		if (x->n > 1)
			return fail(E, SALUS_EINVALID, "'in' needs a single item");
		int set_id = op == B_IN ? n->b : n->a;
		if (indexed)
			return in_indexed(E, set_id, set, &x->v[0], out);
		bool found = false;
		for (size_t i = 0; i < set->n && !found; i++)
			found = items_equal(&x->v[0], &set->v[i], false);
		return push_bool(E, out, found);
	}
	default: return arith(E, op, &l, &r, out);
	}
}

static int ev(struct env *E, int id, const struct coll *in, struct coll *out)
{
	const struct node *n = &E->e->nodes[id];
	int rc = 0;
	if (n->konst && E->memo_ok && E->memo_ok[id]) {
		*out = E->memo[id];
		return 0;
	}
	if (++E->depth > 400) {
		E->depth--;
		return fail(E, SALUS_ETOOLARGE, "FHIRPath evaluation nested too deeply");
	}
	struct coll res = {0};
	switch ((enum nop)n->op) {
	case N_EMPTY: break;
	case N_BOOL: rc = push_bool(E, &res, n->b); break;
	case N_INT: rc = push_int(E, &res, n->i); break;
	case N_DEC: {
		item_t it;
		memset(&it, 0, sizeof it);
		it.kind = SALUS_FP_DEC;
		it.tname = "Decimal";
		it.d = n->d;
		rc = push(E, &res, &it);
		break;
	}
	case N_STR: rc = push_str(E, &res, n->s, n->n, false); break;
	case N_THIS:
		for (size_t i = 0; i < in->n && !rc; i++)
			rc = push(E, &res, &in->v[i]);
		break;
	case N_INDEX: rc = push_int(E, &res, E->index); break;
	case N_TOTAL: break;
	case N_EXT:
		if (!strcmp(n->s, "resource"))
			rc = push(E, &res, &E->res);
		else if (!strcmp(n->s, "rootResource"))
			rc = push(E, &res, &E->root);
		else if (!strcmp(n->s, "context"))
			rc = push(E, &res, &E->context);
		else if (!strcmp(n->s, "ucum"))
			rc = push_str(E, &res, "http://unitsofmeasure.org", 25, false);
		else if (!strcmp(n->s, "sct"))
			rc = push_str(E, &res, "http://snomed.info/sct", 22, false);
		else if (!strcmp(n->s, "loinc"))
			rc = push_str(E, &res, "http://loinc.org", 16, false);
		else
			rc = fail(E, SALUS_EINVALID, "unknown external constant");
		break;
	case N_IDENT:
		for (size_t i = 0; i < in->n && !rc; i++) {
			const item_t *it = &in->v[i];
			if (isupper((unsigned char)n->s[0])) {
				if (item_is_type(it, n->s))
					rc = push(E, &res, it);
			} else {
				rc = child(E, it, n->s, &res);
			}
		}
		break;
	case N_CHILD: {
		struct coll a = {0};
		if ((rc = ev(E, n->a, in, &a)))
			break;
		for (size_t i = 0; i < a.n && !rc; i++)
			rc = child(E, &a.v[i], n->s, &res);
		break;
	}
	case N_FUNC: rc = ev_func(E, n, in, &res); break;
	case N_INDEXER: {
		struct coll a = {0}, b = {0};
		if ((rc = ev(E, n->a, in, &a)) || (rc = ev(E, n->b, in, &b)))
			break;
		struct val v = b.n == 1 ? value_of(&b.v[0]) : (struct val){0};
		if (v.k != V_NUM || !v.isint) {
			rc = fail(E, SALUS_EINVALID, "index must be an integer");
			break;
		}
		if (v.i >= 0 && (size_t)v.i < a.n)
			rc = push(E, &res, &a.v[v.i]);
		break;
	}
	case N_NEG: {
		struct coll a = {0};
		if ((rc = ev(E, n->a, in, &a)))
			break;
		if (a.n == 1) {
			struct val v = value_of(&a.v[0]);
			if (v.k == V_NUM && v.isint) {
				rc = push_int(E, &res, -v.i);
			} else if (v.k == V_NUM) {
				item_t it;
				memset(&it, 0, sizeof it);
				it.kind = SALUS_FP_DEC;
				it.tname = "Decimal";
				it.d = -v.d;
				rc = push(E, &res, &it);
			}
		}
		break;
	}
	case N_BIN: rc = ev_bin(E, n, in, &res); break;
	case N_IS:
	case N_AS: {
		struct coll a = {0};
		if ((rc = ev(E, n->a, in, &a)))
			break;
		if (n->op == N_IS) {
			if (a.n > 1)
				rc = fail(E, SALUS_EINVALID, "'is' needs a single item");
			else if (a.n == 1)
				rc = push_bool(E, &res, item_is_type(&a.v[0], n->s));
		} else {
			for (size_t i = 0; i < a.n && !rc; i++)
				if (item_is_type(&a.v[i], n->s))
					rc = push(E, &res, &a.v[i]);
		}
		break;
	}
	}
	E->depth--;
	if (rc)
		return rc;
	if (n->konst && E->memo_ok) {
		E->memo[id] = res;
		E->memo_ok[id] = 1;
	}
	*out = res;
	return 0;
}

int salus_fp_eval(struct salus_fp_ctx *cx, const struct salus_fp_expr *e, const json_t *resource, const json_t *root,
		  const struct salus_fp_item *context, struct salus_fp_result *out)
{
	struct env E = {.cx = cx, .e = e, .index = 0};
	cx->steps = 0;
	cx->rc = 0;
	cx->err = NULL;
	salus_fp_item_root(resource, &E.res);
	salus_fp_item_root(root ? root : resource, &E.root);
	if (context)
		E.context = *context;
	else
		E.context = E.res;
	if (e->has_konst) {
		E.memo = arena_alloc(cx, e->nnodes * sizeof *E.memo);
		E.memo_ok = arena_alloc(cx, e->nnodes);
		E.hidx = arena_alloc(cx, e->nnodes * sizeof *E.hidx);
		if (!E.memo || !E.memo_ok || !E.hidx)
			return cx->rc;
		memset(E.memo_ok, 0, e->nnodes);
		memset(E.hidx, 0, e->nnodes * sizeof *E.hidx);
	}
	struct coll in = {.v = &E.context, .n = 1, .cap = 1}, res = {0};
	int rc = ev(&E, e->root, &in, &res);
	if (rc)
		return rc;
	out->items = res.v;
	out->n = res.n;
	return 0;
}

int salus_fp_eval_bool(struct salus_fp_ctx *cx, const struct salus_fp_expr *e, const json_t *resource,
		       const json_t *root, const struct salus_fp_item *context, int *out)
{
	struct salus_fp_result r;
	int rc = salus_fp_eval(cx, e, resource, root, context, &r);
	if (rc)
		return rc;
	if (r.n == 0) {
		*out = -1;
		return 0;
	}
	if (r.n > 1) {
		cx->err = "a boolean was expected, got a collection";
		return SALUS_EINVALID;
	}
	struct val v = value_of(&r.items[0]);
	*out = v.k == V_BOOL ? v.b : 1;
	return 0;
}
