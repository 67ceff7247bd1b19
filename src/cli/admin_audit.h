/*
 * admin_audit.h — the AuditEvent of an administrative command of the CLI
 * (clients, users, sessions, keys, backups, erasure): DCM 110100 Application
 * Activity, client "salus-cli", in the data directory's Merkle log
 * (docs/audit.md).  The command has run; if its event cannot be written the
 * command says so and exits non-zero.
 */
#ifndef SALUS_CLI_ADMIN_AUDIT_H
#define SALUS_CLI_ADMIN_AUDIT_H
#include "audit/audit.h"
#include "core/config.h"
#include "store/store.h"

/* Record rq in the trail of cfg's data directory through st (interaction, client_id "salus-cli"
 * and time filled in when unset).  Errors: those of salus_audit_new / salus_audit_record. */
int salus_cli_audit(const struct salus_config *cfg, struct salus_store *st, struct salus_audit_req *rq);

/* An administrative action (DCM 110100): the query ("action=...&...") and the outcome rc of the
 * action (0: done, HTTP 200; else its error).  Errors: those of salus_cli_audit. */
int salus_cli_audit_action(const struct salus_config *cfg, struct salus_store *st, const char *query, int rc);

/* salus_cli_audit_action for the data directory dir: the query ("action=...&...") and the
 * outcome rc of the action (0: done, HTTP 200; else its error).  On failure to record, prints a
 * one-line message for command `name` and returns 1; else 0. */
int salus_cli_audit_admin(const char *name, const char *dir, struct salus_store *st, const char *query, int rc);

#endif
