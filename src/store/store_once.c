/*
 * store_once.c — one-time values (store.h, "one-time values"): a table of
 * (ns, key, exp) rows that lets a caller claim a value exactly once until it
 * expires — the replay cache of JWT client assertions (auth: a `jti` may be
 * used once).  The claim is one job of the single writer, so of two
 * concurrent claims of the same value exactly one succeeds, in this process
 * or any other on the same database; it is durable before the caller is
 * answered, so a restart does not reopen the replay window.
 *
 * Each claim also deletes up to ONCE_PURGE expired rows (an index on exp
 * makes that a short range scan), so the table stays the size of the values
 * still inside their lifetime without a sweeper thread.
 */
#include "store/store_int.h"
#include "store/store_sqlite_int.h"

#include <sqlite3.h>
#include <string.h>

#include "core/err.h"

#define ONCE_PURGE 64 /* expired rows removed per claim: more than one, so the table shrinks */

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS once(ns TEXT NOT NULL, key TEXT NOT NULL, exp INTEGER NOT NULL,"
	" PRIMARY KEY(ns, key));"
	"CREATE INDEX IF NOT EXISTS once_exp ON once(exp);";

struct claim {
	const char *ns, *key;
	int64_t exp, now;
};

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
	if (rc == SQLITE_ERROR) { /* the table does not exist yet (an older database) */
		if ((rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL)) == SQLITE_OK)
			rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
	}
	return salus_sq_map_rc(rc);
}

static int wr_claim(void *ctx, sqlite3 *db)
{
	const struct claim *c = ctx;
	sqlite3_stmt *ins = NULL, *del = NULL;
	int rc;

	/* a row whose value has expired may be claimed again (it is the same as absent) */
	if ((rc = prepare(db,
			  "INSERT INTO once(ns, key, exp) VALUES(?1, ?2, ?3) "
			  "ON CONFLICT(ns, key) DO UPDATE SET exp = excluded.exp WHERE once.exp <= ?4",
			  &ins)))
		return rc;
	sqlite3_bind_text(ins, 1, c->ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 2, c->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 3, c->exp);
	sqlite3_bind_int64(ins, 4, c->now);
	rc = sqlite3_step(ins);
	sqlite3_finalize(ins);
	if (rc != SQLITE_DONE)
		return salus_sq_map_rc(rc);
	if (sqlite3_changes(db) == 0)
		return SALUS_EEXISTS;
	if ((rc = prepare(db,
			  "DELETE FROM once WHERE rowid IN (SELECT rowid FROM once WHERE exp <= ?1 LIMIT "
			  "64)",
			  &del)))
		return rc;
	sqlite3_bind_int64(del, 1, c->now);
	rc = sqlite3_step(del);
	sqlite3_finalize(del);
	return rc == SQLITE_DONE ? SALUS_OK : salus_sq_map_rc(rc);
}

_Static_assert(ONCE_PURGE == 64, "the purge statement spells ONCE_PURGE out");

int salus_store_once_claim(struct salus_store *s, const char *ns, const char *key, int64_t exp_s, int64_t now_s)
{
	size_t nn = ns ? strlen(ns) : 0, kn = key ? strlen(key) : 0;
	if (!s || !nn || !kn || nn > SALUS_STORE_MAX_KV_NAME || kn > SALUS_STORE_MAX_KV_NAME || exp_s <= now_s)
		return SALUS_EINVALID;
	if (s->ops != &salus_store_sqlite_ops)
		return SALUS_EINVALID;
	struct claim c = {ns, key, exp_s, now_s};
	return salus_sq_writer_call(s, wr_claim, &c);
}
