/*
 * admin_audit.c — see admin_audit.h.
 */
#include "cli/admin_audit.h"

#include "cli/cmd.h"
#include "core/err.h"
#include "core/limits.h"

int salus_cli_audit(const struct salus_config *cfg, struct salus_store *st, struct salus_audit_req *rq)
{
	char kp[SALUS_PATH_MAX];
	struct salus_audit_opts ao = {0};
	struct salus_audit *au = NULL;
	int rc;

	if (salus_config_path(cfg, "keys/audit.key", kp))
		return SALUS_EINVALID;
	ao.key_path = kp;
	if ((rc = salus_audit_new(st, &ao, &au)))
		return rc;
	if (!rq->client_id)
		rq->client_id = "salus-cli";
	rc = salus_audit_record(au, rq, NULL);
	salus_audit_free(au);
	return rc;
}

int salus_cli_audit_action(const struct salus_config *cfg, struct salus_store *st, const char *query, int rc)
{
	struct salus_audit_req rq = {
		.interaction = SALUS_AUDIT_ADMIN,
		.status = rc ? salus_err_http(rc) : 200,
		.query = query,
	};
	return salus_cli_audit(cfg, st, &rq);
}

int salus_cli_audit_admin(const char *name, const char *dir, struct salus_store *st, const char *query, int rc)
{
	struct salus_config cfg;
	const char *why = NULL;
	int arc = salus_config_load(&cfg, dir, &why);
	if (!arc)
		arc = salus_cli_audit_action(&cfg, st, query, rc);
	if (arc)
		return salus_cli_fail(name, 1, "the action could not be audited: %s", salus_err_msg(arc));
	return 0;
}
