/* err.c — lookups over the SALUS_ERR_MAP table (see err.h). */
#include "core/err.h"

struct err_row {
	int code;
	int http;
	const char *name;
	const char *issue;
	const char *msg;
};

static const struct err_row rows[] = {
#define SALUS_ERR_ROW(name, code, http, issue, msg) {code, http, #name, issue, msg},
	SALUS_ERR_MAP(SALUS_ERR_ROW)
#undef SALUS_ERR_ROW
};

static const struct err_row *find(int rc)
{
	for (unsigned i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (rows[i].code == rc)
			return &rows[i];
	return 0;
}

const char *salus_err_name(int rc)
{
	const struct err_row *r = find(rc);
	return rc == 0 ? "OK" : r ? r->name : "UNKNOWN";
}

const char *salus_err_msg(int rc)
{
	const struct err_row *r = find(rc);
	return rc == 0 ? "ok" : r ? r->msg : "unknown error";
}

int salus_err_http(int rc)
{
	const struct err_row *r = find(rc);
	return rc == 0 ? 200 : r ? r->http : 500;
}

const char *salus_err_issue(int rc)
{
	const struct err_row *r = find(rc);
	return rc == 0 ? "informational" : r ? r->issue : "exception";
}
