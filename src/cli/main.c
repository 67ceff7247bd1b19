/*
 * main.c — the salus binary: a sorted table of subcommands (git.c's habit).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "core/alloc.h"
#include "store/store.h"

struct cmd {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
};

/* Keep sorted by name. */
static const struct cmd cmds[] = {
	{"audit", salus_cmd_audit, "verify, export and prove the audit trail"},
	{"backup", salus_cmd_backup, "online encrypted backups: create, verify, restore"},
	{"client", salus_cmd_client, "register, list and remove OAuth clients"},
	{"deid", salus_cmd_deid, "find and transform PHI in text and FHIR"},
	{"gen", salus_cmd_gen, "generate synthetic demo patients"},
	{"init", salus_cmd_init, "create a data directory"},
	{"key", salus_cmd_key, "encryption keys: status, rotate, rekey-data"},
	{"load", salus_cmd_load, "bulk-load trusted NDJSON resources into the store, indexed"},
	{"patient", salus_cmd_patient, "patient records: erase (crypto-shredding)"},
	{"reindex", salus_cmd_reindex, "rebuild the search index from the stored resources"},
	{"report", salus_cmd_report, "accounting of disclosures"},
	{"serve", salus_cmd_serve, "serve FHIR R4 over HTTPS"},
	{"user", salus_cmd_user, "users: add, list, disable, reset-mfa, set-role, sessions"},
	{"version", salus_cmd_version, "print the version"},
};

int salus_cli_fail(const char *cmd, int status, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "salus %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: salus COMMAND [OPTIONS]   (salus COMMAND --help for details)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
}

int salus_cmd_version(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("usage: salus version\nPrints the Salus version.\n");
		return 0;
	}
	if (argc > 1)
		return salus_cli_fail("version", 2, "unexpected argument (see --help)");
	/* a BENCHMARK-ONLY build says so, with each thing it leaves out */
	static const char *const left_out[] = {
#ifdef SALUS_BENCH_NO_AUDIT
		"audit phase compiled out",
#endif
#ifdef SALUS_BENCH_NO_ENCRYPT
		"data stored UNENCRYPTED",
#endif
#ifdef SALUS_BENCH_NO_INDEX
		"writes NOT indexed for search",
#endif
		NULL,
	};
	printf("salus %s", SALUS_VERSION);
	for (size_t i = 0; left_out[i]; i++)
		printf("%s%s", i ? ", " : " (BENCHMARK-ONLY build: ", left_out[i]);
	puts(left_out[0] ? ", never ship)" : "");
	return 0;
}

int main(int argc, char **argv)
{
	umask(077); /* data directories, keys and databases are private to the service account */
	salus_alloc_install();
	salus_store_global_init(); /* SQLite allocations through the seam, before any SQLite use */
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return salus_cmd_version(1, argv + 1);
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "salus: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
