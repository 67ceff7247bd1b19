/*
 * cmd_patient.c — `salus patient erase --data DIR --id ID --reason CODE`:
 * crypto-shredding of one patient's record (docs/security.md
 * "Crypto-shredding").
 *
 * Steps, each safe to repeat (running the command again finishes a run that
 * stopped half-way):
 *   1. a new patient-key wrapping key (PWK) is added to the keyring (next to
 *      a running server: the successor of the newest, which the server
 *      derives itself, crypto/pwk.h; otherwise a random one);
 *   2. the patient's record key is destroyed in keys/patient-keys.db, then
 *      every row of their resources (current, history, index) is removed
 *      from the database and the ids recorded as erased;
 *   3. every remaining patient key is re-wrapped under the new PWK and the
 *      key database compacted;
 *   4. an AuditEvent (Application Activity, entity Patient/ID, the reason
 *      code, no PHI) is appended to the audit trail;
 *   5. the old PWKs are destroyed and the KEK rotated (the old KEK version
 *      removed from the key file), so a copy of keyring.json or of the key
 *      database made before the erasure no longer unwraps anything.
 * Online: a running server stops serving the patient the moment step 2's key
 * destruction is committed (every process wipes its cache of record keys,
 * store/patkey.c), and follows step 3 to the new PWK.
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "cli/admin_audit.h"
#include "cli/cmd.h"
#include "cli/store_open.h"
#include "core/config.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "crypto/keyring.h"
#include "store/store.h"


static const char usage[] =
	"usage: salus patient erase --data DIR --id ID --reason CODE [--ticket REF] [--by NAME]\n"
	"Crypto-shreds one patient's record: destroys the patient's data key, removes their resources,\n"
	"history and index entries, records an AuditEvent, re-wraps the other patients' keys and\n"
	"rotates the KEK, so neither the database nor a backup taken before can yield the record again.\n"
	"Works next to a running server, which answers 410 Gone for the patient at once.  This cannot be undone.\n"
	"  --reason CODE  why (required; stored in the audit trail, so a code, never free text):\n"
	"                 entered-in-error     the data was entered into the wrong record or is bogus\n"
	"                 right-to-erasure     a lawful erasure request (e.g. GDPR Art. 17) outside US retention duties\n"
	"                 retention-expired    past every retention period (state law, 45 CFR 164.316(b)(2)) and no legal hold\n"
	"                 unlawfully-obtained  collected without a lawful basis\n"
	"  --ticket REF   change-control reference ([A-Za-z0-9._-], up to 64), stored in the audit trail\n"
	"  --by NAME      who authorised it (default: the OS user), stored in the audit trail\n"
	"HIPAA has no right to erasure: medical records must be kept as long as state law requires and\n"
	"the documentation of the erasure for 6 years.  Never erase under a legal hold (docs/security.md).\n";

static const char *const reasons[] = {"entered-in-error", "right-to-erasure", "retention-expired",
				      "unlawfully-obtained"};

static bool token_ok(const char *s, size_t max)
{
	size_t n = 0;
	for (; s && s[n]; n++) {
		char c = s[n];
		if (n >= max || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				  c == '-' || c == '.' || c == '_'))
			return false;
	}
	return n > 0;
}

/* The AuditEvent of the erasure (PHI-free: ids and codes only). */
static int record_erase(const struct salus_config *cfg, struct salus_store *st, const char *pid, const char *reason,
			const char *ticket, const char *by, const struct salus_erase_result *res, int status)
{
	char query[256];
	const char *pats[1] = {pid};

	snprintf(query, sizeof query, "action=patient-erase&reason=%s%s%s&key_destroyed=%s&resources=%ld", reason,
		 ticket ? "&ticket=" : "", ticket ? ticket : "", res->key_destroyed ? "true" : "false", res->resources);
	struct salus_audit_req rq = {
		.interaction = SALUS_AUDIT_ADMIN,
		.resource_type = "Patient",
		.id = pid,
		.patients = pats,
		.npatients = 1,
		.status = status,
		.client_id = "salus-cli",
		.user_id = by,
		.query = query,
	};
	return salus_cli_audit(cfg, st, &rq);
}

static int patient_erase(const struct salus_config *cfg, const char *pid, const char *reason, const char *ticket,
			 const char *by)
{
	struct salus_kek_config kc;
	struct salus_keyring *kr = NULL;
	struct salus_store *st = NULL;
	struct salus_erase_result res = {0};
	char kf[SALUS_PATH_MAX], ring[SALUS_PATH_MAX];
	const char *why = NULL;
	size_t nrewrap = 0;
	bool online = false;
	int rc, status = 1;

	if (salus_cli_kek_config(cfg, &kc, kf, ring))
		return salus_cli_fail("patient", 2, "bad [keys] settings");
	if ((rc = salus_cli_store_in_use(cfg, &online)))
		return salus_cli_fail("patient", 1, "cannot tell whether a server is running: %s", salus_err_msg(rc));
	if ((rc = salus_keyring_open(ring, &kc, &kr, &why)))
		return salus_cli_fail("patient", 1, "cannot unlock the keyring: %s", why ? why : salus_err_msg(rc));
	/* 1: the wrapping key the surviving patient keys move to (a first one
	 * for a keyring that has none yet, then the new one) */
	if ((!salus_keyring_pwk_count(kr) && (rc = salus_keyring_pwk_add(kr))) ||
	    (rc = online ? salus_keyring_pwk_add_successor(kr) : salus_keyring_pwk_add(kr))) {
		salus_cli_fail("patient", 1, "cannot add a patient-key wrapping key: %s%s", salus_err_msg(rc),
			       rc == SALUS_ETOOLARGE ? " (an earlier erase did not finish: run it again)" : "");
		if (rc != SALUS_ETOOLARGE)
			goto out_kr;
	}
	/* offline, the key database to ourselves (no server may start meanwhile) */
	struct salus_store_opts so = {.patient_keys_exclusive = !online, .readers = 1};
	if ((rc = salus_cli_open_store_kr(cfg, kr, &so, &st, &why))) {
		salus_cli_fail("patient", 1, "cannot open the store: %s%s", why ? why : salus_err_msg(rc),
			       rc == SALUS_EBUSY ? " (a server started meanwhile: run it again)" : "");
		goto out_kr;
	}
	if (online)
		printf("salus: a server is running: erasing online (it answers 410 Gone for the patient from now on)\n");
	/* 2: the key, then the rows */
	rc = salus_store_patient_erase(st, pid, &res);
	if (rc) {
		record_erase(cfg, st, pid, reason, ticket, by, &res, 500);
		salus_cli_fail("patient", 1, "erase failed: %s (run it again to finish)", salus_err_msg(rc));
		goto out_store;
	}
	/* 3: surviving keys under the new PWK */
	if ((rc = salus_store_patient_rewrap(st, &nrewrap))) {
		salus_cli_fail("patient", 1, "the key is destroyed, but re-wrapping the other keys failed: %s (run it again)",
			       salus_err_msg(rc));
		goto out_store;
	}
	/* 4: the audit trail */
	if ((rc = record_erase(cfg, st, pid, reason, ticket, by, &res, 200))) {
		salus_cli_fail("patient", 1, "the patient is erased, but the AuditEvent was not recorded: %s",
			       salus_err_msg(rc));
		goto out_store;
	}
	salus_store_free(st); /* checkpoints the WAL into the database */
	st = NULL;
	/* 5: old PWKs destroyed, KEK rotated */
	if ((rc = salus_keyring_pwk_destroy_old(kr)) || (rc = salus_keyring_rotate_kek(kr, &kc, &why))) {
		salus_cli_fail("patient", 1, "the patient is erased, but the keyring was not rotated: %s (run it again)",
			       why ? why : salus_err_msg(rc));
		goto out_kr;
	}
	printf("salus: patient %s erased (%s): %s, %ld resources removed; %zu other patient keys re-wrapped; "
	       "KEK rotated\n",
	       pid, reason, res.key_destroyed ? "record key destroyed" : "no live record key (already erased or none)",
	       res.resources, nrewrap);
	printf("salus: backups of the database stay usable for everyone else; keep only the current keys/ files\n");
	status = 0;
out_store:
	salus_store_free(st);
out_kr:
	salus_keyring_free(kr);
	return status;
}

int salus_cmd_patient(int argc, char **argv)
{
	const char *dir = NULL, *sub = NULL, *id = NULL, *reason = NULL, *ticket = NULL, *by = NULL, *why = NULL;
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (!strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--data"))
			slot = &dir;
		else if (!strcmp(argv[i], "--id"))
			slot = &id;
		else if (!strcmp(argv[i], "--reason"))
			slot = &reason;
		else if (!strcmp(argv[i], "--ticket"))
			slot = &ticket;
		else if (!strcmp(argv[i], "--by"))
			slot = &by;
		if (slot && i + 1 < argc) {
			*slot = argv[i + 1];
			argv[i] = argv[i + 1] = NULL;
			i++;
		} else if (!sub && argv[i][0] != '-') {
			sub = argv[i];
			argv[i] = NULL;
		}
	}
	if (!sub || !dir)
		return salus_cli_fail("patient", 2, "usage: salus patient erase --data DIR --id ID --reason CODE (see --help)");
	if (strcmp(sub, "erase"))
		return salus_cli_fail("patient", 2, "unknown subcommand '%s' (see --help)", sub);
	if (!id || !token_ok(id, SALUS_MAX_ID) || strchr(id, '_'))
		return salus_cli_fail("patient", 2, "--id ID is required (a FHIR id: [A-Za-z0-9.-]{1,64})");
	bool known = false;
	for (size_t k = 0; reason && k < sizeof reasons / sizeof *reasons; k++)
		known |= !strcmp(reason, reasons[k]);
	if (!known)
		return salus_cli_fail("patient", 2,
				      "--reason is required: entered-in-error, right-to-erasure, retention-expired or "
				      "unlawfully-obtained (see --help)");
	if (ticket && !token_ok(ticket, 64))
		return salus_cli_fail("patient", 2, "--ticket: [A-Za-z0-9._-], up to 64 characters");
	if (by && !token_ok(by, 64))
		return salus_cli_fail("patient", 2, "--by: [A-Za-z0-9._-], up to 64 characters");
	if (!by) {
		struct passwd *pw = getpwuid(geteuid());
		by = pw && token_ok(pw->pw_name, 64) ? pw->pw_name : "unknown";
	}
	struct salus_config cfg;
	if (salus_config_load(&cfg, dir, &why))
		return salus_cli_fail("patient", 1, "%s", why);
	if (salus_config_override(&cfg, argc, argv, &why))
		return salus_cli_fail("patient", 2, "%s", why);
	for (int i = 1; i < argc; i++)
		if (argv[i])
			return salus_cli_fail("patient", 2, "unexpected argument '%s' (see --help)", argv[i]);
	if (salus_crypto_init())
		return salus_cli_fail("patient", 1, "libsodium failed to initialise");
	return patient_erase(&cfg, id, reason, ticket, by);
}
