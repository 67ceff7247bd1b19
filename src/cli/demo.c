/*
 * demo.c — load synthetic demo patients into a store (see demo.h).
 * Resources arrive from the generator in dependency order with their ids and
 * are written as update-as-create, a few hundred to a transaction.
 */
#include "cli/demo.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/gen.h"
#include "fhir/search.h"

#define DEMO_BATCH 256

struct loader {
	struct salus_store *st;
	struct salus_write ops[DEMO_BATCH];
	char types[DEMO_BATCH][SALUS_MAX_TYPE + 1]; /* copies: the store rewrites id/meta in the resource */
	char ids[DEMO_BATCH][SALUS_MAX_ID + 1];
	size_t n;
	long written;
};

static int flush(struct loader *l)
{
	int rc = l->n ? salus_store_write(l->st, l->ops, l->n) : 0;
	for (size_t i = 0; i < l->n; i++) {
		json_decref(l->ops[i].resource);
		salus_write_release(&l->ops[i]);
	}
	if (!rc)
		l->written += (long)l->n;
	l->n = 0;
	return rc;
}

static int on_resource(void *ctx, json_t *res)
{
	struct loader *l = ctx;
	const char *type = json_string_value(json_object_get(res, "resourceType"));
	const char *id = json_string_value(json_object_get(res, "id"));
	if (!type || !id || strlen(type) > SALUS_MAX_TYPE || strlen(id) > SALUS_MAX_ID)
		return SALUS_EINTERNAL;
	size_t i = l->n++;
	struct salus_write *w = &l->ops[i];
	memset(w, 0, sizeof *w);
	w->kind = SALUS_WRITE_UPDATE;
	w->resource = json_incref(res);
	snprintf(l->types[i], sizeof l->types[i], "%s", type);
	snprintf(l->ids[i], sizeof l->ids[i], "%s", id);
	w->type = l->types[i];
	w->id = l->ids[i];
	return l->n == DEMO_BATCH ? flush(l) : 0;
}

int salus_demo_load(struct salus_store *st, int patients, unsigned long seed, long *loaded)
{
	struct salus_gen *g;
	struct salus_gen_opts o = {.seed = seed};
	int rc = salus_gen_new(&o, &g);
	if (rc)
		return rc;
	struct loader *l = salus_calloc(1, sizeof *l);
	if (!l) {
		salus_gen_free(g);
		return SALUS_ENOMEM;
	}
	l->st = st;
	salus_fhir_search_attach(st); /* direct store writes: index them for search (docs/search.md) */
	rc = salus_gen_run(g, (size_t)patients, on_resource, l);
	int rc2 = flush(l);
	salus_gen_free(g);
	if (!rc)
		rc = rc2;
	if (!rc)
		*loaded = l->written;
	salus_free(l);
	return rc;
}
