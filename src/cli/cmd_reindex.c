/*
 * cmd_reindex.c — `salus reindex --data DIR [--type T]`: rebuild the search
 * index (docs/search.md) of every current resource from its stored JSON,
 * writing no new version (store.h, SALUS_WRITE_REINDEX).  For data written
 * before the index existed or by a writer that bypassed the FHIR layer.
 * Safe while the server runs: each resource is re-indexed only if its
 * version is still the one read (a newer write has indexed itself).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cmd.h"
#include "cli/store_open.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/err.h"
#include "fhir/defs.h"
#include "fhir/search.h"
#include "store/store.h"

#define REINDEX_BATCH 256

static const char usage[] = "usage: salus reindex --data DIR [--type TYPE]\n"
			    "Rebuilds the search index of every current resource (or of one type) from the\n"
			    "stored resources; no new versions are written.  Prints the number re-indexed.\n";

struct batch {
	struct salus_store *st;
	struct salus_write ops[REINDEX_BATCH];
	char ids[REINDEX_BATCH][SALUS_MAX_ID + 1];
	char type[SALUS_MAX_TYPE + 1];
	char last[SALUS_MAX_ID + 1]; /* paging key: the last id listed */
	size_t n;
	long done;
	int rc;
};

static int flush(struct batch *b)
{
	int rc = b->n ? salus_store_write(b->st, b->ops, b->n) : 0;
	for (size_t i = 0; i < b->n; i++) {
		json_decref(b->ops[i].resource);
		salus_write_release(&b->ops[i]);
	}
	if (!rc)
		b->done += (long)b->n;
	b->n = 0;
	return rc;
}

static int on_resource(void *ctx, const struct salus_resource *r)
{
	struct batch *b = ctx;
	json_error_t err;
	snprintf(b->last, sizeof b->last, "%s", r->id);
	if (r->deleted || !r->json)
		return 0;
	json_t *j = json_loadb(r->json, r->len, 0, &err);
	if (!j)
		return SALUS_EINTEGRITY; /* the store only holds JSON it wrote */
	size_t i = b->n++;
	struct salus_write *w = &b->ops[i];
	memset(w, 0, sizeof *w);
	snprintf(b->ids[i], sizeof b->ids[i], "%s", r->id);
	w->kind = SALUS_WRITE_REINDEX;
	w->type = b->type;
	w->id = b->ids[i];
	w->resource = j;
	w->if_match = r->version;
	return 0;
}

static int reindex_type(struct batch *b, const char *type, long *n)
{
	int rc;
	snprintf(b->type, sizeof b->type, "%s", type);
	b->last[0] = 0;
	long before = b->done;
	for (;;) {
		b->n = 0;
		rc = salus_store_list(b->st, type, b->last[0] ? b->last : NULL, REINDEX_BATCH, on_resource, b);
		size_t listed = b->n;
		int rc2 = flush(b);
		if (rc || (rc = rc2))
			return rc;
		if (listed < REINDEX_BATCH)
			break;
	}
	*n = b->done - before;
	return SALUS_OK;
}

int salus_cmd_reindex(int argc, char **argv)
{
	const char *dir = NULL, *only = NULL, *why = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		if (i + 1 >= argc)
			return salus_cli_fail("reindex", 2, "unexpected or incomplete argument '%s' (see --help)", argv[i]);
		if (!strcmp(argv[i], "--data"))
			dir = argv[++i];
		else if (!strcmp(argv[i], "--type"))
			only = argv[++i];
		else
			return salus_cli_fail("reindex", 2, "unexpected argument '%s' (see --help)", argv[i]);
	}
	if (!dir)
		return salus_cli_fail("reindex", 2, "--data DIR is required (see --help)");
	if (only && !salus_fhir_is_resource_type(only, strlen(only)))
		return salus_cli_fail("reindex", 2, "unknown resource type");

	struct salus_config cfg;
	struct salus_store *st = NULL;
	struct salus_store_opts so = {.create = false, .readers = 2};
	if (salus_config_load(&cfg, dir, &why))
		return salus_cli_fail("reindex", 2, "%s", why ? why : "cannot read the data directory");
	if (salus_cli_open_store(&cfg, &so, &st, &why))
		return salus_cli_fail("reindex", 1, "cannot open the store: %s", why ? why : "unknown error");
	salus_fhir_search_attach(st);

	struct batch *b = salus_calloc(1, sizeof *b);
	int rc = b ? SALUS_OK : SALUS_ENOMEM;
	if (b)
		b->st = st;
	size_t nt = salus_fhir_resource_type_count();
	for (size_t i = 0; i < nt && !rc; i++) {
		const char *t = salus_fhir_resource_type_at(i);
		long n = 0;
		if (only && strcmp(only, t))
			continue;
		rc = reindex_type(b, t, &n);
		if (!rc && n)
			printf("%s: %ld\n", t, n);
	}
	/* every resource has its patient+code rows now: searches may drive by them (store_sqlite.c) */
	if (!rc && !only && (rc = salus_store_kv_del(st, "store", "index.patient-code.incomplete")) == SALUS_ENOTFOUND)
		rc = SALUS_OK;
	if (!rc)
		printf("salus reindex: %ld resources re-indexed\n", b->done);
	salus_free(b);
	salus_store_free(st);
	if (rc)
		return salus_cli_fail("reindex", 1, "%s", salus_err_msg(rc));
	return 0;
}
