/*
 * fhir_deid.c — Safe Harbor de-identification of FHIR R4 JSON (fhir_deid.h).
 *
 * One recursive walk over the jansson tree.  An object's kind (HumanName,
 * Address, ContactPoint, Identifier, Reference, Attachment, Narrative) comes
 * from the key that holds it and from its own keys, so the walk needs no
 * FHIR definitions and also covers extensions (valueHumanName, valueAddress...).
 * Strings elsewhere are touched only when they are free text (a fixed list
 * of element names), references/ids, or look like a FHIR date.  A final pass
 * removes what became empty, since FHIR forbids empty strings, objects and
 * arrays.
 */
#include <sodium.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "deid/deid.h"
#include "deid/fhir_deid.h"
#include "deid/transform_int.h"

#define REDACTED "[REDACTED]"
#define GENERATED_DIV "<div xmlns=\"http://www.w3.org/1999/xhtml\">[narrative removed]</div>"
#define SCOPE_MAX 256

struct fctx {
	const struct salus_deid_fhir_opts *o;
	struct salus_deid_xform_opts x; /* copy of o->x with the current scope */
	char scope[SCOPE_MAX];
	json_t *urn; /* fullUrl -> "Patient/<id>" for Patient entries of Bundles */
};

enum kind { K_OTHER, K_NAME, K_ADDRESS, K_TELECOM, K_IDENT, K_REF, K_ATTACH, K_NARR };

static const char *const free_text_keys[] = {
	"text", "comment", "description", "valueString", "valueMarkdown", "conclusion", "summary",
	"patientInstruction", "title", "alias", "purpose", "instruction", "detail", "subtitle", "note",
	"requirements", "name", "comments", "reason", "statusReason", "outcome", "explanation", "message",
};
static const char *const instant_keys[] = {"lastUpdated", "issued", "timestamp", "recorded", "when",
					   "valueInstant", "instant"};
static const char *const non_date_keys[] = {"id", "code", "version", "system", "url", "reference", "fullUrl",
					    "unit", "display", "valueCode", "valueId", "valueUri", "valueUrl",
					    "valueCanonical", "valueOid", "valueUuid", "resourceType", "status"};

static bool in_list(const char *k, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(k, list[i]))
			return true;
	return false;
}
#define IN(k, list) in_list((k), (list), sizeof(list) / sizeof((list)[0]))

static bool dig(char c) { return c >= '0' && c <= '9'; }

/* FHIR date / dateTime / instant syntax (YYYY needs a date-like key). */
static bool looks_date(const char *key, const char *s, size_t n)
{
	if (n < 4 || !dig(s[0]) || !dig(s[1]) || !dig(s[2]) || !dig(s[3]))
		return false;
	if (n == 4)
		return strstr(key, "date") || strstr(key, "Date") || !strcmp(key, "start") || !strcmp(key, "end");
	if (n < 7 || s[4] != '-' || !dig(s[5]) || !dig(s[6]))
		return false;
	if (n == 7)
		return true;
	if (n < 10 || s[7] != '-' || !dig(s[8]) || !dig(s[9]))
		return false;
	if (n == 10)
		return true;
	if (s[10] != 'T' || n < 16)
		return false;
	for (size_t i = 11; i < n; i++)
		if (!(dig(s[i]) || s[i] == ':' || s[i] == '.' || s[i] == 'Z' || s[i] == '+' || s[i] == '-'))
			return false;
	return true;
}

static bool is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!(dig(s[i]) || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F'))) {
			return false;
		}
	}
	return true;
}

/* Keyed pseudonym of a FHIR id, independent of type and scope: UUID-shaped for
 * a UUID (so urn:uuid references keep working), 32 hex digits otherwise. */
static int pseudo_id(struct fctx *c, const char *id, size_t n, struct salus_buf *out)
{
	unsigned char h[16];
	int rc = salus_xf_hash(&c->x, "fhir-id", NULL, id, n, h, sizeof h);
	if (rc)
		return rc;
	if (is_uuid(id, n)) {
		h[6] = (unsigned char)((h[6] & 0x0f) | 0x40);
		h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
	}
	for (int i = 0; i < 16 && !rc; i++) {
		rc = salus_buf_addf(out, "%02x", h[i]);
		if (!rc && is_uuid(id, n) && (i == 3 || i == 5 || i == 7 || i == 9))
			rc = salus_buf_addc(out, '-');
	}
	return rc;
}

/* Rewrite a reference or fullUrl: "#x" kept, urn:uuid:U, [base/]Type/id[/_history/v]. */
static int rewrite_ref(struct fctx *c, const char *r, size_t n, struct salus_buf *out)
{
	if (n && r[0] == '#')
		return salus_buf_add(out, r, n);
	if (n > 9 && !strncmp(r, "urn:uuid:", 9)) {
		int rc = salus_buf_adds(out, "urn:uuid:");
		return rc ? rc : pseudo_id(c, r + 9, n - 9, out);
	}
	const char *q = memchr(r, '?', n);
	if (q) { /* conditional reference: its search values may be identifiers */
		int rc = salus_buf_add(out, r, (size_t)(q - r));
		if (!rc)
			rc = salus_buf_adds(out, "/");
		return rc ? rc : pseudo_id(c, q + 1, n - (size_t)(q - r) - 1, out);
	}
	/* split off "/_history/v" */
	size_t end = n;
	for (size_t i = 0; i + 10 <= n; i++)
		if (!strncmp(r + i, "/_history/", 10)) {
			end = i;
			break;
		}
	size_t slash = end;
	while (slash > 0 && r[slash - 1] != '/')
		slash--;
	if (slash == 0) /* not Type/id: treat the whole as an id */
		return pseudo_id(c, r, n, out);
	int rc = salus_buf_add(out, r, slash);
	if (!rc)
		rc = pseudo_id(c, r + slash, end - slash, out);
	if (!rc)
		rc = salus_buf_add(out, r + end, n - end);
	return rc;
}

/* "Patient/<id>" from a reference, resolved through the urn map; empty when it is not a patient. */
static void ref_patient(struct fctx *c, const char *r, char out[SCOPE_MAX])
{
	out[0] = 0;
	if (!r)
		return;
	if (c->urn) {
		json_t *m = json_object_get(c->urn, r);
		if (json_is_string(m)) {
			snprintf(out, SCOPE_MAX, "%s", json_string_value(m));
			return;
		}
	}
	const char *p = strstr(r, "Patient/");
	if (p && (p == r || p[-1] == '/')) {
		size_t n = strcspn(p + 8, "/?#");
		snprintf(out, SCOPE_MAX, "Patient/%.*s", (int)(n < 128 ? n : 128), p + 8);
	}
}

static void resource_scope(struct fctx *c, json_t *res, const char *rt)
{
	char s[SCOPE_MAX] = "";
	if (!strcmp(rt, "Patient")) {
		const char *id = json_string_value(json_object_get(res, "id"));
		snprintf(s, sizeof s, "Patient/%.128s", id ? id : "");
	} else {
		static const char *const keys[] = {"subject", "patient", "beneficiary", "individual", "who"};
		for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !s[0]; i++) {
			json_t *ref = json_object_get(res, keys[i]);
			ref_patient(c, json_string_value(json_object_get(ref, "reference")), s);
		}
	}
	memcpy(c->scope, s, sizeof s);
	c->x.scope = c->scope;
}

/* Replace the string held at key k of object obj (or at index idx of array arr). */
struct slot {
	json_t *obj;
	const char *key;
	json_t *arr;
	size_t idx;
};

static int slot_set(struct slot *s, const char *v, size_t n)
{
	json_t *j = json_stringn(v, n);
	if (!j) /* not UTF-8 (a detector gave bad bounds) */
		j = json_string(REDACTED);
	if (!j)
		return SALUS_ENOMEM;
	int rc = s->obj ? json_object_set_new(s->obj, s->key, j) : json_array_set_new(s->arr, s->idx, j);
	return rc ? SALUS_ENOMEM : 0;
}

static int slot_del(struct slot *s)
{
	/* an empty string is pruned at the end; deleting now would upset iteration */
	return slot_set(s, "", 0);
}

/* Apply the mode's action for category t to one string. */
static int do_cat(struct fctx *c, struct slot *s, enum salus_phi t, const char *v, size_t n)
{
	enum salus_xf_action a = salus_xf_action(&c->x, t);
	if (a == SALUS_XA_REDACT)
		return slot_del(s);
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_NOTE);
	int rc = salus_xf_value(&c->x, a, t, v, n, &b);
	if (!rc)
		rc = slot_set(s, b.p, b.n);
	salus_buf_release(&b);
	return rc;
}

static int do_date(struct fctx *c, struct slot *s, const char *key, const char *v, size_t n)
{
	enum salus_xf_action a = salus_xf_action(&c->x, SALUS_PHI_DATE);
	if (a != SALUS_XA_SHIFT)
		a = SALUS_XA_YEAR; /* mask/redact cannot live in a date element */
	bool inst = IN(key, instant_keys) && n > 10;
	struct salus_buf b;
	salus_buf_init(&b, 64);
	int st, rc = salus_xf_date(&c->x, a, v, n, inst, &st, &b);
	if (!rc && st != SALUS_XF_DATE_OK) {
		int y = st == SALUS_XF_DATE_OLD ? salus_xf_ref_year(&c->x) - 90 : 0;
		if (st == SALUS_XF_DATE_BAD) { /* syntax matched but not a real date: keep only the year */
			long yy;
			y = salus_parse_long((struct salus_slice){v, 4}, 1, 9999, &yy) ? 1 : (int)yy;
		}
		rc = inst ? salus_buf_addf(&b, "%04d-01-01T00:00:00Z", y) : salus_buf_addf(&b, "%04d", y);
	}
	if (!rc)
		rc = slot_set(s, b.p, b.n);
	salus_buf_release(&b);
	return rc;
}

/* Free text: detector + transform; whole replacement without a detector. */
static int xf_text(struct fctx *c, const char *v, size_t n, struct salus_buf *out)
{
	if (!c->o->scan)
		return c->x.mode == SALUS_DEID_REDACT ? 0 : salus_buf_adds(out, REDACTED);
	const struct salus_span *sp = NULL;
	size_t ns = 0;
	int rc = c->o->scan(c->o->scan_ctx, v, n, &sp, &ns);
	if (!rc)
		rc = salus_deid_transform(&c->x, v, n, sp, ns, out);
	return rc;
}

static int do_text(struct fctx *c, struct slot *s, const char *v, size_t n)
{
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_NOTE);
	int rc = xf_text(c, v, n, &b);
	if (!rc)
		rc = slot_set(s, b.p, b.n);
	salus_buf_release(&b);
	return rc;
}

/* --- narrative ---------------------------------------------------------- */

static int put_utf8(struct salus_buf *b, unsigned long cp)
{
	char u[4];
	size_t k;
	if (cp < 0x80) {
		u[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		k = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		k = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		k = 4;
	}
	return salus_buf_add(b, u, k);
}

/* Decode XML character references of s[0..n) into b; SALUS_EINVALID on a bad one. */
static int xml_decode(const char *s, size_t n, struct salus_buf *b)
{
	static const struct {
		const char *name;
		char c;
	} ents[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (s[i] != '&') {
			rc = salus_buf_addc(b, s[i]);
			continue;
		}
		const char *semi = memchr(s + i, ';', n - i);
		if (!semi || semi - (s + i) > 12)
			return SALUS_EINVALID;
		size_t len = (size_t)(semi - (s + i)) - 1;
		const char *e = s + i + 1;
		if (len > 1 && e[0] == '#') {
			unsigned long cp = 0;
			bool hex = e[1] == 'x' || e[1] == 'X';
			size_t k = hex ? 2 : 1;
			if (k == len)
				return SALUS_EINVALID;
			for (; k < len; k++) {
				int d;
				char ch = e[k];
				if (dig(ch))
					d = ch - '0';
				else if (hex && ch >= 'a' && ch <= 'f')
					d = ch - 'a' + 10;
				else if (hex && ch >= 'A' && ch <= 'F')
					d = ch - 'A' + 10;
				else
					return SALUS_EINVALID;
				cp = cp * (hex ? 16 : 10) + (unsigned long)d;
				if (cp > 0x10FFFF)
					return SALUS_EINVALID;
			}
			if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
				return SALUS_EINVALID;
			rc = put_utf8(b, cp);
		} else {
			size_t k;
			for (k = 0; k < sizeof ents / sizeof ents[0]; k++)
				if (strlen(ents[k].name) == len && !strncmp(e, ents[k].name, len))
					break;
			if (k == sizeof ents / sizeof ents[0])
				return SALUS_EINVALID;
			rc = salus_buf_addc(b, ents[k].c);
		}
		i = (size_t)(semi - s);
	}
	return rc;
}

static int xml_escape(const char *s, size_t n, bool attr, struct salus_buf *b)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		switch (s[i]) {
		case '&': rc = salus_buf_adds(b, "&amp;"); break;
		case '<': rc = salus_buf_adds(b, "&lt;"); break;
		case '>': rc = salus_buf_adds(b, "&gt;"); break;
		case '"': rc = attr ? salus_buf_adds(b, "&quot;") : salus_buf_addc(b, s[i]); break;
		default: rc = salus_buf_addc(b, s[i]); break;
		}
	}
	return rc;
}

static const char *const keep_attrs[] = {"xmlns", "class", "style", "id", "colspan", "rowspan", "span",
					 "lang", "xml:lang", "dir", "width", "height", "align", "valign",
					 "border", "cellpadding", "cellspacing", "scope", "name", "type"};

/* A start or end tag at s[0]=='<'; attribute values other than layout ones are
 * de-identified as free text.  *len gets the tag's length. */
static int narr_tag(struct fctx *c, const char *s, size_t n, size_t *len, struct salus_buf *out)
{
	size_t i = 1;
	while (i < n && s[i] != '>' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '/')
		i++;
	if (i < n && s[i] == '/' && i == 1) { /* end tag */
		const char *gt = memchr(s, '>', n);
		if (!gt)
			return SALUS_EINVALID;
		*len = (size_t)(gt - s) + 1;
		return salus_buf_add(out, s, *len);
	}
	int rc = salus_buf_add(out, s, i);
	while (!rc) {
		size_t ws = i;
		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
			i++;
		if (i >= n)
			return SALUS_EINVALID;
		if (s[i] == '>' || s[i] == '/') {
			const char *gt = memchr(s + i, '>', n - i);
			if (!gt)
				return SALUS_EINVALID;
			*len = (size_t)(gt - s) + 1;
			return salus_buf_add(out, s + ws, *len - ws);
		}
		size_t as = i;
		while (i < n && s[i] != '=' && s[i] != '>' && s[i] != ' ')
			i++;
		if (i + 1 >= n || s[i] != '=' || (s[i + 1] != '"' && s[i + 1] != '\''))
			return SALUS_EINVALID;
		char q = s[i + 1];
		size_t vs = i + 2;
		const char *ve = memchr(s + vs, q, n - vs);
		if (!ve)
			return SALUS_EINVALID;
		size_t vn = (size_t)(ve - (s + vs));
		char aname[16];
		size_t an = i - as;
		bool keep = an < sizeof aname;
		if (keep) {
			memcpy(aname, s + as, an);
			aname[an] = 0;
			keep = IN(aname, keep_attrs);
		}
		rc = salus_buf_add(out, s + ws, vs - ws); /* ' name="' */
		if (!rc && keep) {
			rc = salus_buf_add(out, s + vs, vn);
		} else if (!rc) {
			struct salus_buf plain, t;
			salus_buf_init(&plain, SALUS_MAX_NOTE);
			salus_buf_init(&t, SALUS_MAX_NOTE);
			rc = xml_decode(s + vs, vn, &plain);
			if (!rc)
				rc = xf_text(c, plain.p, plain.n, &t);
			if (!rc)
				rc = xml_escape(t.p, t.n, true, out);
			salus_buf_release(&plain);
			salus_buf_release(&t);
		}
		if (!rc)
			rc = salus_buf_addc(out, q);
		i = (size_t)(ve - s) + 1;
	}
	return rc;
}

/* Text nodes are collected with their decoded text, scanned together (joined
 * by newlines, so context crosses tags but words do not merge), and each node
 * is rewritten with the spans clipped to it. */
struct node {
	size_t out_at;     /* where in `skel` the node goes */
	size_t start, end; /* its range in `plain` */
};

static int narr_nodes(struct fctx *c, const char *plain, size_t pn, const struct node *nodes, size_t nn,
		      const char *skel, size_t sn, struct salus_buf *out)
{
	const struct salus_span *sp = NULL;
	size_t ns = 0;
	int rc = 0;
	if (c->o->scan)
		rc = c->o->scan(c->o->scan_ctx, plain, pn, &sp, &ns);
	struct salus_span *clip = NULL;
	if (!rc && ns) {
		clip = salus_calloc(ns, sizeof *clip);
		if (!clip)
			rc = SALUS_ENOMEM;
	}
	size_t at = 0, si = 0;
	for (size_t k = 0; k < nn && !rc; k++) {
		const struct node *nd = &nodes[k];
		rc = salus_buf_add(out, skel + at, nd->out_at - at);
		at = nd->out_at;
		size_t nc = 0;
		while (si < ns && sp[si].end <= nd->start)
			si++;
		for (size_t j = si; j < ns && sp[j].start < nd->end; j++) {
			clip[nc] = sp[j];
			clip[nc].start = (sp[j].start > nd->start ? sp[j].start : nd->start) - nd->start;
			clip[nc].end = (sp[j].end < nd->end ? sp[j].end : nd->end) - nd->start;
			nc++;
		}
		struct salus_buf t;
		salus_buf_init(&t, SALUS_MAX_NOTE);
		if (!rc && c->o->scan)
			rc = salus_deid_transform(&c->x, plain + nd->start, nd->end - nd->start, clip, nc, &t);
		else if (!rc && nd->end > nd->start)
			rc = salus_buf_adds(&t, REDACTED);
		if (!rc)
			rc = xml_escape(t.p, t.n, false, out);
		salus_buf_release(&t);
	}
	if (!rc)
		rc = salus_buf_add(out, skel + at, sn - at);
	salus_free(clip);
	return rc;
}

static int narr_div(struct fctx *c, const char *d, size_t n, struct salus_buf *out)
{
	struct salus_buf skel, plain;
	struct node *nodes = NULL;
	size_t nn = 0, ncap = 0;
	int rc = 0;
	if (n < 5 || strncmp(d, "<div", 4))
		return SALUS_EINVALID;
	salus_buf_init(&skel, SALUS_MAX_NOTE);
	salus_buf_init(&plain, SALUS_MAX_NOTE);
	size_t i = 0;
	while (i < n && !rc) {
		if (d[i] == '<') {
			if (n - i >= 4 && !strncmp(d + i, "<!--", 4)) { /* comments are dropped */
				const char *e = NULL;
				for (size_t k = i + 4; k + 3 <= n; k++)
					if (!strncmp(d + k, "-->", 3)) {
						e = d + k;
						break;
					}
				if (!e) {
					rc = SALUS_EINVALID;
					break;
				}
				i = (size_t)(e - d) + 3;
				continue;
			}
			if (n - i >= 2 && (d[i + 1] == '!' || d[i + 1] == '?')) {
				rc = SALUS_EINVALID; /* CDATA, doctype, PI: not allowed in a FHIR narrative */
				break;
			}
			size_t len = 0;
			rc = narr_tag(c, d + i, n - i, &len, &skel);
			i += len;
			continue;
		}
		const char *lt = memchr(d + i, '<', n - i);
		size_t e = lt ? (size_t)(lt - d) : n;
		if (nn == ncap) {
			size_t nc = ncap ? ncap * 2 : 16;
			struct node *nw = salus_realloc(nodes, nc * sizeof *nodes);
			if (!nw) {
				rc = SALUS_ENOMEM;
				break;
			}
			nodes = nw;
			ncap = nc;
		}
		if (plain.n)
			rc = salus_buf_addc(&plain, '\n');
		size_t ps = plain.n;
		if (!rc)
			rc = xml_decode(d + i, e - i, &plain);
		if (!rc)
			nodes[nn++] = (struct node){skel.n, ps, plain.n};
		i = e;
	}
	if (!rc)
		rc = narr_nodes(c, plain.p, plain.n, nodes, nn, skel.p, skel.n, out);
	salus_free(nodes);
	salus_buf_release(&skel);
	salus_buf_release(&plain);
	return rc;
}

static int do_div(struct fctx *c, struct slot *s, const char *v, size_t n)
{
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_NOTE);
	int rc = c->o->scan ? narr_div(c, v, n, &b) : SALUS_EINVALID;
	if (rc == SALUS_EINVALID) { /* no detector, or markup we will not vouch for */
		salus_buf_clear(&b);
		rc = salus_buf_adds(&b, GENERATED_DIV);
	}
	if (!rc)
		rc = slot_set(s, b.p, b.n);
	salus_buf_release(&b);
	return rc;
}

int salus_deid_fhir_scan_detector(void *ctx, const char *text, size_t n, const struct salus_span **spans,
				  size_t *nspans)
{
	return salus_deid_scan(ctx, text, n, spans, nspans, NULL);
}

/* --- the walk ----------------------------------------------------------- */

static int walk(struct fctx *c, json_t *j, const char *pkey, int depth);

static bool has(json_t *o, const char *k) { return json_object_get(o, k) != NULL; }

static enum kind kind_of(json_t *obj, const char *pkey)
{
	if (!pkey || has(obj, "resourceType"))
		return K_OTHER;
	if (!strcmp(pkey, "text") && json_is_string(json_object_get(obj, "div")))
		return K_NARR;
	if (!strcmp(pkey, "photo"))
		return K_ATTACH;
	if (has(obj, "family") || has(obj, "given") ||
	    ((!strcmp(pkey, "name") || !strcmp(pkey, "valueHumanName")) && !has(obj, "system") &&
	     (has(obj, "text") || has(obj, "prefix") || has(obj, "suffix"))))
		return K_NAME;
	if (!strcmp(pkey, "address") || !strcmp(pkey, "valueAddress") ||
	    ((has(obj, "line") || has(obj, "city") || has(obj, "postalCode")) && !has(obj, "code")))
		return K_ADDRESS;
	if (!strcmp(pkey, "telecom") || !strcmp(pkey, "valueContactPoint"))
		return K_TELECOM;
	if (!strcmp(pkey, "identifier") || !strcmp(pkey, "valueIdentifier"))
		return K_IDENT;
	if ((has(obj, "contentType") || has(obj, "data")) && !has(obj, "code"))
		return K_ATTACH;
	if (has(obj, "reference") || (has(obj, "display") && !has(obj, "code") && !has(obj, "system")))
		return K_REF;
	return K_OTHER;
}

static enum salus_phi telecom_type(json_t *obj)
{
	const char *sys = json_string_value(json_object_get(obj, "system"));
	if (sys && !strcmp(sys, "email"))
		return SALUS_PHI_EMAIL;
	if (sys && !strcmp(sys, "url"))
		return SALUS_PHI_URL;
	return SALUS_PHI_PHONE;
}

static bool person_ref(json_t *obj)
{
	const char *r = json_string_value(json_object_get(obj, "reference"));
	const char *t = json_string_value(json_object_get(obj, "type"));
	static const char *const types[] = {"Patient", "Practitioner", "RelatedPerson", "Person"};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		size_t l = strlen(types[i]);
		if (t && !strcmp(t, types[i]))
			return true;
		for (const char *p = r ? strstr(r, types[i]) : NULL; p; p = strstr(p + 1, types[i]))
			if (p[l] == '/' && (p == r || p[-1] == '/'))
				return true;
	}
	return false;
}

static int attach_text(struct fctx *c, json_t *obj, const char *data)
{
	size_t dn = strlen(data), bn = 0;
	int rc = 0;
	unsigned char *bin = salus_malloc(dn / 4 * 3 + 4);
	if (!bin)
		return SALUS_ENOMEM;
	if (sodium_base642bin(bin, dn / 4 * 3 + 4, data, dn, " \r\n\t", &bn, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		salus_free(bin);
		return SALUS_EINVALID;
	}
	json_t *probe = json_stringn((const char *)bin, bn); /* must be UTF-8 text */
	if (!probe) {
		salus_free(bin);
		return SALUS_EINVALID;
	}
	json_decref(probe);
	struct salus_buf t;
	salus_buf_init(&t, SALUS_MAX_NOTE);
	rc = xf_text(c, (const char *)bin, bn, &t);
	salus_free(bin);
	if (!rc) {
		size_t el = sodium_base64_ENCODED_LEN(t.n, sodium_base64_VARIANT_ORIGINAL);
		char *enc = salus_malloc(el);
		if (!enc) {
			rc = SALUS_ENOMEM;
		} else {
			sodium_bin2base64(enc, el, (const unsigned char *)t.p, t.n, sodium_base64_VARIANT_ORIGINAL);
			if (json_object_set_new(obj, "data", json_string(enc)) ||
			    json_object_set_new(obj, "size", json_integer((json_int_t)t.n)))
				rc = SALUS_ENOMEM;
			json_object_del(obj, "hash");
			salus_free(enc);
		}
	}
	salus_buf_release(&t);
	return rc;
}

static int walk_attach(struct fctx *c, json_t *obj, int depth)
{
	const char *ct = json_string_value(json_object_get(obj, "contentType"));
	int rc = 0;
	if (json_object_get(obj, "data")) {
		const char *data = json_string_value(json_object_get(obj, "data"));
		rc = (data && ct && !strncmp(ct, "text/", 5)) ? attach_text(c, obj, data) : SALUS_EINVALID;
		if (rc == SALUS_EINVALID) { /* binary or undecodable content goes */
			json_object_del(obj, "data");
			json_object_del(obj, "hash");
			json_object_del(obj, "size");
			rc = 0;
		}
		if (rc)
			return rc;
	}
	json_object_del(obj, "url");
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(obj, tmp, k, v)
	{
		if (!strcmp(k, "data") || !strcmp(k, "size") || !strcmp(k, "contentType") || !strcmp(k, "language"))
			continue;
		struct slot s = {obj, k, NULL, 0};
		if (json_is_string(v) && !strcmp(k, "title"))
			rc = do_text(c, &s, json_string_value(v), json_string_length(v));
		else if (json_is_string(v) && looks_date(k, json_string_value(v), json_string_length(v)))
			rc = do_date(c, &s, k, json_string_value(v), json_string_length(v));
		else if (json_is_object(v) || json_is_array(v))
			rc = walk(c, v, k, depth + 1);
		if (rc)
			return rc;
	}
	return 0;
}

/* Apply category t to a string or each string of an array at obj[k]. */
static int cat_value(struct fctx *c, json_t *obj, const char *k, json_t *v, enum salus_phi t)
{
	if (json_is_string(v)) {
		struct slot s = {obj, k, NULL, 0};
		return do_cat(c, &s, t, json_string_value(v), json_string_length(v));
	}
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			json_t *e = json_array_get(v, i);
			if (!json_is_string(e))
				continue;
			struct slot s = {NULL, NULL, v, i};
			int rc = do_cat(c, &s, t, json_string_value(e), json_string_length(e));
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int rebuild_address_text(json_t *obj)
{
	struct salus_buf b;
	salus_buf_init(&b, 64 * 1024);
	json_t *line = json_object_get(obj, "line");
	int rc = 0;
	for (size_t i = 0; i < json_array_size(line) && !rc; i++) {
		const char *l = json_string_value(json_array_get(line, i));
		if (l && l[0])
			rc = salus_buf_addf(&b, "%s%s", b.n ? ", " : "", l);
	}
	static const char *const parts[] = {"city", "district", "state", "postalCode", "country"};
	for (size_t i = 0; i < 5 && !rc; i++) {
		const char *p = json_string_value(json_object_get(obj, parts[i]));
		if (p && p[0])
			rc = salus_buf_addf(&b, "%s%s", b.n ? (i == 3 ? " " : ", ") : "", p);
	}
	if (!rc && json_object_set_new(obj, "text", json_stringn(b.p, b.n)))
		rc = SALUS_ENOMEM;
	salus_buf_release(&b);
	return rc;
}

static int walk_object(struct fctx *c, json_t *obj, const char *pkey, int depth)
{
	enum kind kd = kind_of(obj, pkey);
	const char *rt = json_string_value(json_object_get(obj, "resourceType"));
	struct salus_deid_xform_opts saved_x = c->x;
	char saved_scope[SCOPE_MAX];
	int rc = 0;
	if (kd == K_ATTACH)
		return walk_attach(c, obj, depth);
	if (rt) {
		memcpy(saved_scope, c->scope, sizeof saved_scope);
		if (!pkey || strcmp(pkey, "contained"))
			resource_scope(c, obj, rt);
		if (!strcmp(rt, "Bundle")) { /* map Patient fullUrls first, for urn:uuid subjects */
			json_t *entries = json_object_get(obj, "entry");
			for (size_t i = 0; i < json_array_size(entries); i++) {
				json_t *e = json_array_get(entries, i);
				json_t *r = json_object_get(e, "resource");
				const char *fu = json_string_value(json_object_get(e, "fullUrl"));
				const char *ert = json_string_value(json_object_get(r, "resourceType"));
				const char *id = json_string_value(json_object_get(r, "id"));
				if (fu && ert && id && !strcmp(ert, "Patient")) {
					char s[SCOPE_MAX];
					snprintf(s, sizeof s, "Patient/%.128s", id);
					if (!c->urn && !(c->urn = json_object()))
						return SALUS_ENOMEM;
					if (json_object_set_new(c->urn, fu, json_string(s)))
						return SALUS_ENOMEM;
				}
			}
		}
	}
	if (kd == K_ADDRESS) { /* geolocation extensions pinpoint the home */
		json_t *ext = json_object_get(obj, "extension");
		for (size_t i = json_array_size(ext); i-- > 0;) {
			const char *u = json_string_value(json_object_get(json_array_get(ext, i), "url"));
			if (u && strstr(u, "geolocation"))
				json_array_remove(ext, i);
		}
	}
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(obj, tmp, k, v)
	{
		struct slot s = {obj, k, NULL, 0};
		const char *sv = json_string_value(v);
		size_t sn = json_string_length(v);
		if (rt && !strcmp(k, "resourceType"))
			continue;
		if (!strcmp(k, "photo")) { /* Patient/Practitioner/RelatedPerson photos */
			json_object_del(obj, k);
			continue;
		}
		switch (kd) {
		case K_NAME:
			if (!strcmp(k, "family") || !strcmp(k, "given") || !strcmp(k, "text")) {
				rc = cat_value(c, obj, k, v, SALUS_PHI_NAME);
				goto next;
			}
			if (!strcmp(k, "prefix") || !strcmp(k, "suffix") || !strcmp(k, "use"))
				goto next;
			break;
		case K_ADDRESS:
			if (!strcmp(k, "line") || !strcmp(k, "city") || !strcmp(k, "district")) {
				rc = cat_value(c, obj, k, v, SALUS_PHI_LOCATION);
				goto next;
			}
			if (!strcmp(k, "postalCode")) {
				rc = cat_value(c, obj, k, v, SALUS_PHI_ZIP);
				goto next;
			}
			if (!strcmp(k, "state") || !strcmp(k, "country") || !strcmp(k, "text") || !strcmp(k, "use") ||
			    !strcmp(k, "type"))
				goto next;
			break;
		case K_TELECOM:
			if (!strcmp(k, "value")) {
				rc = cat_value(c, obj, k, v, telecom_type(obj));
				goto next;
			}
			if (!strcmp(k, "system") || !strcmp(k, "use"))
				goto next;
			break;
		case K_IDENT:
			if (!strcmp(k, "value")) {
				const char *sys = json_string_value(json_object_get(obj, "system"));
				rc = cat_value(c, obj, k, v,
					       sys && strstr(sys, "us-ssn") ? SALUS_PHI_SSN : SALUS_PHI_ID);
				goto next;
			}
			if (!strcmp(k, "system") || !strcmp(k, "use"))
				goto next;
			break;
		case K_REF:
			if (!strcmp(k, "display") && sv) {
				if (person_ref(obj))
					rc = do_cat(c, &s, SALUS_PHI_NAME, sv, sn);
				else
					rc = do_text(c, &s, sv, sn);
				goto next;
			}
			if (!strcmp(k, "type"))
				goto next;
			break;
		case K_NARR:
			if (!strcmp(k, "div") && sv) {
				rc = do_div(c, &s, sv, sn);
				goto next;
			}
			if (!strcmp(k, "status"))
				goto next;
			break;
		default:
			break;
		}
		if (sv) {
			if (rt && !strcmp(k, "id")) {
				struct salus_buf b;
				salus_buf_init(&b, 128);
				rc = pseudo_id(c, sv, sn, &b);
				if (!rc)
					rc = slot_set(&s, b.p, b.n);
				salus_buf_release(&b);
			} else if (!strcmp(k, "reference") || !strcmp(k, "fullUrl")) {
				struct salus_buf b;
				salus_buf_init(&b, SALUS_MAX_URL + 128);
				rc = rewrite_ref(c, sv, sn, &b);
				if (!rc)
					rc = slot_set(&s, b.p, b.n);
				salus_buf_release(&b);
			} else if (!strcmp(k, "authorString")) {
				rc = do_cat(c, &s, SALUS_PHI_NAME, sv, sn);
			} else if (!strcmp(k, "valueString") && json_is_string(json_object_get(obj, "url")) &&
				   strstr(json_string_value(json_object_get(obj, "url")), "MaidenName")) {
				rc = do_cat(c, &s, SALUS_PHI_NAME, sv, sn);
			} else if (IN(k, free_text_keys)) {
				rc = do_text(c, &s, sv, sn);
			} else if (!IN(k, non_date_keys) && looks_date(k, sv, sn)) {
				rc = do_date(c, &s, k, sv, sn);
			}
		} else if (json_is_object(v)) {
			rc = walk(c, v, k, depth + 1);
		} else if (json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
				json_t *e = json_array_get(v, i);
				struct slot es = {NULL, NULL, v, i};
				if (json_is_string(e) && IN(k, free_text_keys))
					rc = do_text(c, &es, json_string_value(e), json_string_length(e));
				else if (json_is_string(e) && !IN(k, non_date_keys) &&
					 looks_date(k, json_string_value(e), json_string_length(e)))
					rc = do_date(c, &es, k, json_string_value(e), json_string_length(e));
				else if (json_is_object(e) || json_is_array(e))
					rc = walk(c, e, k, depth + 1);
			}
		}
	next:
		if (rc)
			break;
	}
	if (!rc && kd == K_ADDRESS && json_object_get(obj, "text"))
		rc = rebuild_address_text(obj);
	if (rt && (!pkey || strcmp(pkey, "contained"))) {
		memcpy(c->scope, saved_scope, sizeof saved_scope);
		c->x = saved_x;
		c->x.scope = c->scope;
	}
	return rc;
}

static int walk(struct fctx *c, json_t *j, const char *pkey, int depth)
{
	if (depth > SALUS_MAX_JSON_DEPTH)
		return SALUS_EINVALID;
	if (json_is_object(j))
		return walk_object(c, j, pkey, depth);
	if (json_is_array(j)) {
		for (size_t i = 0; i < json_array_size(j); i++) {
			int rc = walk(c, json_array_get(j, i), pkey, depth + 1);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Remove empty strings, objects and arrays (FHIR forbids them); true when j became empty. */
static bool prune(json_t *j)
{
	if (json_is_string(j))
		return json_string_length(j) == 0;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(j, tmp, k, v)
		{
			if (prune(v))
				json_object_del(j, k);
		}
		return json_object_size(j) == 0;
	}
	if (json_is_array(j)) {
		for (size_t i = json_array_size(j); i-- > 0;)
			if (prune(json_array_get(j, i)))
				json_array_remove(j, i);
		return json_array_size(j) == 0;
	}
	return false;
}

int salus_deid_fhir_resource(const struct salus_deid_fhir_opts *o, json_t *res)
{
	if (!o || !res)
		return SALUS_EUSAGE;
	if (!o->x.key || o->x.key_len != SALUS_DEID_KEY_LEN || (unsigned)o->x.mode >= SALUS_DEID__MODE_COUNT)
		return SALUS_EUSAGE;
	if (!json_is_object(res) || !json_is_string(json_object_get(res, "resourceType")) ||
	    json_string_length(json_object_get(res, "resourceType")) == 0)
		return SALUS_EINVALID;
	if (sodium_init() < 0)
		return SALUS_ECRYPTO;
	struct fctx c = {.o = o, .x = o->x};
	c.x.scope = c.scope;
	int rc = walk(&c, res, NULL, 0);
	json_decref(c.urn);
	if (!rc)
		prune(res);
	return rc;
}

int salus_deid_fhir_json(const struct salus_deid_fhir_opts *o, const char *in, size_t n, bool compact,
			 struct salus_buf *out)
{
	json_error_t err;
	json_t *doc = json_loadb(in, n, JSON_REJECT_DUPLICATES, &err);
	if (!doc)
		return SALUS_EINVALID;
	int rc = salus_deid_fhir_resource(o, doc);
	if (!rc) {
		char *s = json_dumps(doc, (compact ? JSON_COMPACT : JSON_INDENT(2)) | JSON_PRESERVE_ORDER);
		if (!s) {
			rc = SALUS_ENOMEM;
		} else {
			rc = salus_buf_adds(out, s);
			if (!rc && !compact)
				rc = salus_buf_addc(out, '\n');
			salus_free(s); /* jansson allocates through the seam (salus_alloc_install) */
		}
	}
	json_decref(doc);
	return rc;
}

int salus_deid_fhir_text(const struct salus_deid_fhir_opts *o, const char *in, size_t n, struct salus_buf *out,
			 size_t *bad_line)
{
	if (bad_line)
		*bad_line = 0;
	size_t i = 0;
	while (i < n && (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n'))
		i++;
	const char *nl = memchr(in + i, '\n', n - i);
	size_t first_end = nl ? (size_t)(nl - in) : n;
	json_error_t err;
	json_t *probe = json_loadb(in + i, first_end - i, 0, &err);
	if (!probe)
		return salus_deid_fhir_json(o, in, n, false, out);
	json_decref(probe);
	size_t line = 0, mark = out->n;
	int rc = 0;
	for (size_t s = 0; s < n && !rc;) {
		const char *e = memchr(in + s, '\n', n - s);
		size_t end = e ? (size_t)(e - in) : n;
		line++;
		size_t a = s, b = end;
		while (a < b && (in[a] == ' ' || in[a] == '\t' || in[a] == '\r'))
			a++;
		while (b > a && (in[b - 1] == ' ' || in[b - 1] == '\t' || in[b - 1] == '\r'))
			b--;
		if (b > a) {
			rc = salus_deid_fhir_json(o, in + a, b - a, true, out);
			if (!rc)
				rc = salus_buf_addc(out, '\n');
			if (rc && bad_line)
				*bad_line = line;
		}
		s = end + 1;
	}
	if (rc && out->cap && out->n >= mark) {
		out->n = mark;
		out->p[mark] = 0;
	}
	return rc;
}
