/*
 * cmd_backup.c — `salus backup`: online, encrypted backups of a data
 * directory, their verification and their restore (docs/backup.md).
 *
 *   salus backup --data DIR --out DEST
 *       DEST (new, mode 0700) gets a consistent copy of the database, of its
 *       audit database and of the patient key database (salus_store_backup:
 *       sealed pages, online),
 *       every other file of DIR (config, keyring, signing keys, TLS) except
 *       the KEK file, and MANIFEST.json (BLAKE2b-256 and size of each file).
 *       The backup is recorded in the audit trail; if that fails the backup
 *       is removed (fail closed).
 *   salus backup verify DEST
 *       every file of the manifest is there with its size and hash, and no
 *       other file is (exit 0 valid, 1 not valid, 2 unreadable).
 *   salus backup restore DEST --data NEWDIR [--kek-file F] [--keys-from B]
 *       verifies DEST, copies it into the new NEWDIR (the KEK file from F;
 *       keys/ from a newer backup B, which must be taken after the last
 *       erasure), opens the store with the KEK to prove the keys, and applies
 *       again every erasure the key database records.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "cli/admin_audit.h"
#include "cli/cmd.h"
#include "cli/secret_file.h"
#include "cli/store_open.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define MANIFEST  "MANIFEST.json"
#define FORMAT    "salus-backup/1"
#define MAX_FILES 256

static const char usage[] =
    "usage: salus backup --data DIR --out DEST\n"
    "       salus backup verify DEST\n"
    "       salus backup restore DEST --data NEWDIR [--kek-file FILE] [--keys-from NEWER_BACKUP]\n"
    "Online, encrypted backups of a data directory (docs/backup.md).\n"
    "  backup   copy DIR into the new directory DEST while the server keeps serving: the database and\n"
    "           the patient key database as consistent snapshots (every page stays encrypted), the\n"
    "           config, keyring, signing keys and TLS files, never the KEK file; a MANIFEST.json with\n"
    "           each file's BLAKE2b-256; recorded in the audit trail\n"
    "  verify   check every file of DEST against its manifest (exit 0 valid, 1 not valid, 2 unreadable)\n"
    "  restore  verify DEST and make the new data directory NEWDIR from it; --kek-file copies the KEK\n"
    "           (key-file source) into NEWDIR; --keys-from takes keys/keyring.json and\n"
    "           keys/patient-keys.db from a newer backup (needed after a patient erasure: the old\n"
    "           keyring no longer opens with the rotated KEK); erasures recorded in the key database\n"
    "           are applied again before the restore reports success\n";

/* ---- files ---- */

static int mkdirs_for(const char *root, const char *rel)
{
	char p[SALUS_PATH_MAX];
	if (salus_cli_path_join(p, root, rel))
		return SALUS_EINVALID;
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			return SALUS_EIO;
		*s = '/';
	}
	return SALUS_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A path relative to root, or NULL when p is not inside root. */
static const char *rel_to(const char *root, const char *p)
{
	size_t n = strlen(root);
	if (strncmp(p, root, n) || p[n] != '/')
		return NULL;
	return p + n + 1;
}

/* ---- the file list of a data directory ---- */

struct plan {
	const char *dir;
	char db[SALUS_PATH_MAX], adb[SALUS_PATH_MAX], keys[SALUS_PATH_MAX], kek[SALUS_PATH_MAX];
	char *files[MAX_FILES]; /* relative paths of the plain copies */
	size_t n;
	bool too_many, odd;
};

static struct plan *g_plan; /* nftw has no context argument */

static bool is_or_beside(const char *p, const char *base)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal", ".lock"};
	size_t n = strlen(base);
	if (!*base || strncmp(p, base, n))
		return false;
	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++)
		if (!strcmp(p + n, sfx[i]))
			return true;
	return false;
}

static int plan_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	struct plan *pl = g_plan;
	const char *rel = rel_to(pl->dir, path);
	(void)sb;
	(void)ftw;
	if (!rel)
		return 0; /* the root itself */
	if (flag == FTW_SL || flag == FTW_SLN || flag == FTW_NS || flag == FTW_DNR) {
		pl->odd = true; /* symbolic links and unreadable entries are not followed */
		return 0;
	}
	if (flag != FTW_F)
		return 0;
	if (is_or_beside(path, pl->db) || is_or_beside(path, pl->adb) || is_or_beside(path, pl->keys) ||
	    !strcmp(path, pl->kek))
		return 0;
	if (pl->n == MAX_FILES) {
		pl->too_many = true;
		return 1;
	}
	if (!(pl->files[pl->n] = salus_strdup(rel)))
		return 1;
	pl->n++;
	return 0;
}

static void plan_free(struct plan *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		salus_free(pl->files[i]);
	pl->n = 0;
}

/* ---- manifest ---- */

static void hex(const unsigned char *h, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[h[i] >> 4];
		out[2 * i + 1] = d[h[i] & 15];
	}
	out[2 * n] = '\0';
}

static int manifest_add(json_t *files, const char *root, const char *rel)
{
	char p[SALUS_PATH_MAX], hx[2 * SALUS_HASH_LEN + 1];
	unsigned char h[SALUS_HASH_LEN];
	uint64_t bytes = 0;
	int rc;
	if (salus_cli_path_join(p, root, rel))
		return SALUS_EINVALID;
	if ((rc = salus_hash256_file(p, h, &bytes)))
		return rc;
	hex(h, sizeof h, hx);
	return json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "path", rel, "bytes",
	                                              (json_int_t)bytes, "blake2b256", hx))
	           ? SALUS_ENOMEM
	           : SALUS_OK;
}

/* Every file of the manifest of root matches, and root holds no other file.
 * 0 valid, 1 not valid (*why says which file), 2 unreadable manifest. */
static int manifest_check(const char *root, json_t **doc_out, char *why, size_t cap)
{
	char p[SALUS_PATH_MAX];
	json_error_t err;
	json_t *doc, *e;
	size_t i;
	int status = 0;

	if (salus_cli_path_join(p, root, MANIFEST) ||
	    !(doc = json_load_file(p, JSON_REJECT_DUPLICATES, &err))) {
		snprintf(why, cap, "no readable %s in the backup", MANIFEST);
		return 2;
	}
	const char *fmt = json_string_value(json_object_get(doc, "format"));
	json_t *files = json_object_get(doc, "files");
	if (!fmt || strcmp(fmt, FORMAT) || !json_is_array(files)) {
		snprintf(why, cap, "%s is not a %s manifest", MANIFEST, FORMAT);
		json_decref(doc);
		return 2;
	}
	json_array_foreach(files, i, e)
	{
		const char *rel = json_string_value(json_object_get(e, "path"));
		const char *want = json_string_value(json_object_get(e, "blake2b256"));
		json_int_t bytes = json_integer_value(json_object_get(e, "bytes"));
		unsigned char h[SALUS_HASH_LEN];
		char hx[2 * SALUS_HASH_LEN + 1];
		uint64_t got = 0;
		if (!rel || !want || !*rel || rel[0] == '/' || strstr(rel, "..")) {
			snprintf(why, cap, "%s has a bad entry (#%zu)", MANIFEST, i);
			json_decref(doc);
			return 2;
		}
		if (salus_cli_path_join(p, root, rel) || salus_hash256_file(p, h, &got)) {
			snprintf(why, cap, "%s is missing", rel);
			status = 1;
			break;
		}
		hex(h, sizeof h, hx);
		if ((json_int_t)got != bytes || strcmp(hx, want)) {
			snprintf(why, cap, "%s does not match the manifest (%s)", rel,
			         (json_int_t)got != bytes ? "size" : "hash");
			status = 1;
			break;
		}
	}
	if (!status) {
		/* nothing added: every regular file is listed (or is the manifest) */
		struct plan pl = {.dir = root};
		g_plan = &pl;
		nftw(root, plan_entry, 16, FTW_PHYS);
		g_plan = NULL;
		for (size_t k = 0; k < pl.n && !status; k++) {
			bool listed = !strcmp(pl.files[k], MANIFEST);
			json_array_foreach(files, i, e) listed |=
			    !strcmp(pl.files[k], json_string_value(json_object_get(e, "path")));
			if (!listed) {
				snprintf(why, cap, "%s is not in the manifest", pl.files[k]);
				status = 1;
			}
		}
		if (!status && (pl.odd || pl.too_many)) {
			snprintf(why, cap, "the backup holds links or unreadable entries");
			status = 1;
		}
		plan_free(&pl);
	}
	if (doc_out && !status)
		*doc_out = doc;
	else
		json_decref(doc);
	return status;
}

/* ---- backup ---- */

static int record_backup(const struct salus_config *cfg, struct salus_store *st, size_t nfiles)
{
	char query[128];
	snprintf(query, sizeof query, "action=backup&files=%zu", nfiles);
	struct salus_audit_req rq = {
	    .interaction = SALUS_AUDIT_ADMIN,
	    .status = 200,
	    .user_id = "backup",
	    .query = query,
	};
	return salus_cli_audit(cfg, st, &rq);
}

static int backup(const struct salus_config *cfg, const char *out)
{
	struct salus_kek_config kc;
	struct salus_store *st = NULL;
	struct plan pl = {.dir = cfg->dir};
	char ring[SALUS_PATH_MAX], uri[SALUS_PATH_MAX + 8], p[SALUS_PATH_MAX], q[SALUS_PATH_MAX];
	const char *why = NULL, *dbrel, *adbrel, *keysrel;
	json_t *doc = NULL, *files;
	int rc, status = 1;

	if (salus_cli_kek_config(cfg, &kc, pl.kek, ring) || salus_cli_store_uri(cfg, uri) ||
	    salus_config_path(cfg, cfg->patient_keys, pl.keys))
		return salus_cli_fail("backup", 2, "bad [keys] or [store] settings");
	if (strncmp(uri, "sqlite:", 7))
		return salus_cli_fail("backup", 2, "only a SQLite store can be backed up this way");
	if (strlen(uri + 7) >= sizeof pl.db)
		return salus_cli_fail("backup", 2, "the store path is too long");
	memcpy(pl.db, uri + 7, strlen(uri + 7) + 1);
	if (salus_store_audit_path(pl.db, pl.adb, sizeof pl.adb))
		return salus_cli_fail("backup", 2, "the store path is too long");
	if (kc.source != SALUS_KEK_FILE)
		pl.kek[0] = '\0';
	if (!(dbrel = rel_to(cfg->dir, pl.db)) || !(adbrel = rel_to(cfg->dir, pl.adb)) ||
	    !(keysrel = rel_to(cfg->dir, pl.keys)))
		return salus_cli_fail("backup", 2,
		                      "the database and keys/patient-keys.db must be inside the data "
		                      "directory");
	if (mkdir(out, 0700))
		return salus_cli_fail("backup", errno == EEXIST ? 2 : 1, "%s: %s", out,
		                      errno == EEXIST ? "exists (a backup goes into a new directory)"
		                                      : "cannot create the directory");
	struct salus_store_opts so = {.readers = 1};
	if ((rc = salus_cli_open_store(cfg, &so, &st, &why))) {
		salus_cli_fail("backup", 1, "cannot open the store: %s", why ? why : salus_err_msg(rc));
		goto out;
	}
	/* the database, then the key database (store.h: keys before bodies) */
	if (mkdirs_for(out, dbrel) || mkdirs_for(out, keysrel)) {
		salus_cli_fail("backup", 1, "cannot create directories in %s", out);
		goto out;
	}
	if (salus_cli_path_join(p, out, dbrel) || salus_cli_path_join(q, out, keysrel)) {
		salus_cli_fail("backup", 2, "the backup path is too long");
		goto out;
	}
	if ((rc = salus_store_backup(st, p, q))) {
		salus_cli_fail("backup", 1, "copying the database failed: %s", salus_err_msg(rc));
		goto out;
	}
	/* every other file (the keyring after the store opened: it may add a wrapping key) */
	g_plan = &pl;
	rc = nftw(cfg->dir, plan_entry, 16, FTW_PHYS);
	g_plan = NULL;
	if (rc || pl.too_many) {
		salus_cli_fail("backup", 1, "cannot list %s%s", cfg->dir,
		               pl.too_many ? " (too many files)" : "");
		goto out;
	}
	if (pl.odd)
		fprintf(stderr, "salus backup: symbolic links and unreadable entries in the data directory "
		                "were skipped\n");
	for (size_t i = 0; i < pl.n; i++) {
		char src[SALUS_PATH_MAX];
		if (salus_cli_path_join(src, cfg->dir, pl.files[i]) || salus_cli_path_join(p, out, pl.files[i]) || !strcmp(pl.files[i], MANIFEST) || mkdirs_for(out, pl.files[i]) ||
		    (rc = salus_cli_copy_file(src, p, 0600))) {
			salus_cli_fail("backup", 1, "cannot copy %s", pl.files[i]);
			goto out;
		}
	}
	/* the manifest */
	char when[40];
	salus_instant_format(salus_now_ms(), when);
	if (!(doc = json_pack("{s:s, s:s, s:s, s:[]}", "format", FORMAT, "created", when, "salus_version",
	                      SALUS_VERSION, "files")) ||
	    !(files = json_object_get(doc, "files")) || manifest_add(files, out, dbrel) ||
	    manifest_add(files, out, adbrel) || manifest_add(files, out, keysrel)) {
		salus_cli_fail("backup", 1, "cannot hash the database copies");
		goto out;
	}
	for (size_t i = 0; i < pl.n; i++)
		if (manifest_add(files, out, pl.files[i])) {
			salus_cli_fail("backup", 1, "cannot hash %s", pl.files[i]);
			goto out;
		}
	int fd = salus_cli_path_join(p, out, MANIFEST) ? -1 : open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || json_dumpfd(doc, fd, JSON_INDENT(1) | JSON_SORT_KEYS) || fsync(fd)) {
		if (fd >= 0)
			close(fd);
		salus_cli_fail("backup", 1, "cannot write %s", MANIFEST);
		goto out;
	}
	close(fd);
	/* fail closed: an unrecorded backup is removed */
	if ((rc = record_backup(cfg, st, pl.n + 3))) {
		salus_cli_fail("backup", 1,
		               "the backup could not be recorded in the audit trail (%s): removed",
		               salus_err_msg(rc));
		goto out;
	}
	printf("salus: backup of %s written to %s (%zu files; the KEK is not in it: keep it apart)\n",
	       cfg->dir, out, pl.n + 3);
	status = 0;
out:
	json_decref(doc);
	plan_free(&pl);
	salus_store_free(st);
	if (status)
		rm_tree(out);
	return status;
}

/* ---- restore ---- */

static int restore(const char *from, const char *dir, const char *kek_file, const char *keys_from)
{
	struct salus_config cfg;
	struct salus_store *st = NULL;
	json_t *doc = NULL, *kdoc = NULL, *e;
	char why[256], p[SALUS_PATH_MAX], src[SALUS_PATH_MAX];
	const char *w = NULL;
	size_t i, npat = 0;
	long nres = 0;
	int status, rc;

	if ((status = manifest_check(from, &doc, why, sizeof why)))
		return salus_cli_fail("backup", status, "%s: %s", from, why);
	if (keys_from && (status = manifest_check(keys_from, &kdoc, why, sizeof why))) {
		json_decref(doc);
		return salus_cli_fail("backup", status, "--keys-from %s: %s", keys_from, why);
	}
	if (mkdir(dir, 0700)) {
		json_decref(doc);
		json_decref(kdoc);
		return salus_cli_fail("backup", errno == EEXIST ? 2 : 1, "%s: %s", dir,
		                      errno == EEXIST ? "exists (restore makes a new data directory)"
		                                      : "cannot create the directory");
	}
	status = 1;
	char abs_buf[SALUS_PATH_MAX], fabs_buf[SALUS_PATH_MAX];
	char *abs = realpath(dir, abs_buf), *fabs = realpath(from, fabs_buf);
	char ring_rel[SALUS_PATH_MAX] = "", pk_rel[SALUS_PATH_MAX] = "";
	if (!abs || !fabs) {
		salus_cli_fail("backup", 1, "%s: cannot resolve the path", abs ? from : dir);
		goto out;
	}
	/* where the backup's config keeps the keyring and the key database */
	if (salus_config_load(&cfg, fabs, &w)) {
		salus_cli_fail("backup", 1, "the backup's salus.ini does not load: %s", w ? w : "?");
		goto out;
	}
	if (salus_config_path(&cfg, cfg.keyring, p) || !rel_to(fabs, p) ||
	    snprintf(ring_rel, sizeof ring_rel, "%s", rel_to(fabs, p)) < 0 ||
	    salus_config_path(&cfg, cfg.patient_keys, p) || !rel_to(fabs, p) ||
	    snprintf(pk_rel, sizeof pk_rel, "%s", rel_to(fabs, p)) < 0) {
		salus_cli_fail("backup", 1, "the backup's keyring and key database must be inside it");
		goto out;
	}
	/* the backup's files; the keyring and the key database from the newer backup when given */
	json_array_foreach(json_object_get(doc, "files"), i, e)
	{
		const char *rel = json_string_value(json_object_get(e, "path"));
		bool keyfile = !strcmp(rel, ring_rel) || !strcmp(rel, pk_rel);
		const char *base = keys_from && keyfile ? keys_from : from;
		if (salus_cli_path_join(src, base, rel) || salus_cli_path_join(p, abs, rel) || mkdirs_for(abs, rel) || (rc = salus_cli_copy_file(src, p, 0600))) {
			salus_cli_fail("backup", 1, "cannot copy %s%s", rel,
			               keys_from && keyfile ? " from --keys-from" : "");
			goto out;
		}
	}
	if (salus_config_load(&cfg, abs, &w)) {
		salus_cli_fail("backup", 1, "the restored salus.ini does not load: %s", w ? w : "?");
		goto out;
	}
	if (kek_file) {
		struct salus_kek_config kc;
		char kf[SALUS_PATH_MAX], ring[SALUS_PATH_MAX];
		if (salus_cli_kek_config(&cfg, &kc, kf, ring) || kc.source != SALUS_KEK_FILE) {
			salus_cli_fail("backup", 2,
			               "--kek-file: the restored config does not use a KEK file");
			goto out;
		}
		if (mkdirs_for(abs, rel_to(abs, kf) ? rel_to(abs, kf) : "") ||
		    (rc = salus_cli_copy_file(kek_file, kf, 0600))) {
			salus_cli_fail("backup", 1, "cannot copy the KEK file to %s", kf);
			goto out;
		}
	}
	/* prove the keys: the store opens (keyring unwrapped by the KEK, page 1
	 * authenticated), then the recorded erasures are applied again */
	struct salus_store_opts so = {.readers = 1};
	if ((rc = salus_cli_open_store(&cfg, &so, &st, &w))) {
		salus_cli_fail("backup", 1, "the restored store does not open: %s",
		               w ? w : salus_err_msg(rc));
		goto out;
	}
	if ((rc = salus_store_patient_replay(st, &npat, &nres))) {
		salus_cli_fail("backup", 1, "applying the recorded erasures failed: %s", salus_err_msg(rc));
		goto out;
	}
	printf("salus: restored %s into %s; %zu erased patients recorded, %ld resources removed again\n",
	       from, abs, npat, nres);
	status = 0;
out:
	salus_store_free(st);
	if (status && abs)
		rm_tree(abs);
	else if (status)
		rm_tree(dir);
	json_decref(doc);
	json_decref(kdoc);
	return status;
}

int salus_cmd_backup(int argc, char **argv)
{
	const char *dir = NULL, *out = NULL, *sub = NULL, *arg = NULL, *kek = NULL, *keys_from = NULL,
	           *why = NULL;
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (!strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--data"))
			slot = &dir;
		else if (!strcmp(argv[i], "--out"))
			slot = &out;
		else if (!strcmp(argv[i], "--kek-file"))
			slot = &kek;
		else if (!strcmp(argv[i], "--keys-from"))
			slot = &keys_from;
		if (slot && i + 1 < argc) {
			*slot = argv[i + 1];
			argv[i] = argv[i + 1] = NULL;
			i++;
		} else if (slot) {
			return salus_cli_fail("backup", 2, "%s needs a value (see --help)", argv[i]);
		} else if (argv[i][0] != '-' && (!sub || !arg)) {
			if (!sub && (!strcmp(argv[i], "verify") || !strcmp(argv[i], "restore")))
				sub = argv[i];
			else if (sub && !arg)
				arg = argv[i];
			else
				return salus_cli_fail("backup", 2, "unexpected argument '%s' (see --help)",
				                      argv[i]);
			argv[i] = NULL;
		}
	}
	if (salus_crypto_init())
		return salus_cli_fail("backup", 1, "libsodium failed to initialise");
	if (sub && !strcmp(sub, "verify")) {
		char w[256];
		if (!arg || dir || out || kek || keys_from)
			return salus_cli_fail("backup", 2, "usage: salus backup verify DEST");
		int st = manifest_check(arg, NULL, w, sizeof w);
		if (st)
			return salus_cli_fail("backup", st, "%s: %s", arg, w);
		printf("salus: backup %s is complete and matches its manifest\n", arg);
		return 0;
	}
	if (sub) { /* restore */
		if (!arg || !dir || out)
			return salus_cli_fail("backup", 2,
			                      "usage: salus backup restore DEST --data NEWDIR (see --help)");
		for (int i = 1; i < argc; i++)
			if (argv[i])
				return salus_cli_fail("backup", 2, "unexpected argument '%s' (see --help)",
				                      argv[i]);
		return restore(arg, dir, kek, keys_from);
	}
	if (!dir || !out || kek || keys_from)
		return salus_cli_fail("backup", 2, "usage: salus backup --data DIR --out DEST (see --help)");
	struct salus_config cfg;
	if (salus_config_load(&cfg, dir, &why))
		return salus_cli_fail("backup", 1, "%s", why);
	if (salus_config_override(&cfg, argc, argv, &why))
		return salus_cli_fail("backup", 2, "%s", why);
	for (int i = 1; i < argc; i++)
		if (argv[i])
			return salus_cli_fail("backup", 2, "unexpected argument '%s' (see --help)", argv[i]);
	return backup(&cfg, out);
}
