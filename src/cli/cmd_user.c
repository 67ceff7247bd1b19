/*
 * cmd_user.c — `salus user add|list|disable|reset-mfa|set-role|sessions|revoke-session`:
 * the people who log in to a data directory (auth/user.h, docs/security.md
 * "Identity").  Passwords are read from a file (never the command line),
 * checked against the password policy, stored only as peppered Argon2id
 * hashes; the TOTP enrolment is shown once (otpauth:// URI, a QR code in
 * UTF-8 blocks, recovery codes) and optionally written to a 0600 file.
 */
#include <errno.h>
#include <fcntl.h>
#include <qrencode.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/user.h"
#include "cli/cmd.h"
#include "cli/secret_file.h"
#include "cli/admin_audit.h"
#include "cli/store_open.h"
#include "core/clock.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/err.h"
#include "core/limits.h"
#include "crypto/crypto.h"
#include "store/store.h"

static const char usage_main[] =
	"usage: salus user add|list|disable|reset-mfa|set-role|sessions|revoke-session --data DIR [OPTIONS]\n"
	"Manages the users who log in (staff and patients).  Roles: admin, clinician, nurse, front-desk,\n"
	"billing, auditor (staff: TOTP MFA required), patient, related-person.\n";
static const char usage_add[] =
	"usage: salus user add --data DIR --username U --role ROLE --password-file F\n"
	"                      [--practitioner ID | --patient ID | --related-person ID] [--totp-secret-out FILE]\n"
	"                      [--totp-qr-out FILE.svg]\n"
	"Adds a user.  The password is read from F ('-': standard input; one trailing newline dropped),\n"
	"must be 12..1024 bytes, not common, not containing the username.  A TOTP secret and 10 recovery\n"
	"codes are provisioned and shown once; --totp-secret-out writes the base32 secret to FILE (0600),\n"
	"--totp-qr-out the enrolment QR code as an SVG image (0600; open it in a browser or print it and\n"
	"hand it to the user, then delete it: it holds the secret).  On a terminal the QR code is also printed.\n"
	"  --practitioner ID  the user's FHIR Practitioner (staff roles)\n"
	"  --patient ID       the user's FHIR Patient (role patient)\n"
	"  --related-person ID  the user's FHIR RelatedPerson (role related-person: proxy access to\n"
	"                     RelatedPerson.patient while the RelatedPerson is active)\n";
static const char usage_list[] =
	"usage: salus user list --data DIR\n"
	"One line per user: username, role, link, state (active/disabled), mfa (enrolled/pending), created.\n";
static const char usage_disable[] =
	"usage: salus user disable --data DIR --username U\n"
	"Disables a user: no more logins; sessions and tokens end at once.\n";
static const char usage_reset[] =
	"usage: salus user reset-mfa --data DIR --username U [--totp-secret-out FILE] [--totp-qr-out FILE.svg]\n"
	"New TOTP secret and recovery codes (shown once); clears a lockout; ends the user's sessions.\n";
static const char usage_role[] =
	"usage: salus user set-role --data DIR --username U --role ROLE\n"
	"Changes the role; sessions and tokens of the user end at once.\n";
static const char usage_sessions[] =
	"usage: salus user sessions --data DIR [--username U]\n"
	"Lists login sessions: id, username, address, created, last seen.\n";
static const char usage_revoke[] =
	"usage: salus user revoke-session --data DIR (--id ID | --username U)\n"
	"Ends one session, or every session of a user.\n";

struct opts {
	const char *data, *username, *role, *password_file, *practitioner, *patient, *related, *totp_out, *qr_out, *id;
};

static int parse(const char *name, const char *usage, int argc, char **argv, struct opts *o)
{
	static const struct {
		const char *flag;
		size_t off;
	} flags[] = {
		{"--data", offsetof(struct opts, data)},
		{"--username", offsetof(struct opts, username)},
		{"--role", offsetof(struct opts, role)},
		{"--password-file", offsetof(struct opts, password_file)},
		{"--practitioner", offsetof(struct opts, practitioner)},
		{"--patient", offsetof(struct opts, patient)},
		{"--related-person", offsetof(struct opts, related)},
		{"--totp-secret-out", offsetof(struct opts, totp_out)},
		{"--totp-qr-out", offsetof(struct opts, qr_out)},
		{"--id", offsetof(struct opts, id)},
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		if (!strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 1;
		}
		for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
			if (!strcmp(a, flags[k].flag))
				dst = (const char **)(void *)((char *)o + flags[k].off);
		if (!dst)
			return salus_cli_fail(name, 2, "unexpected argument '%s' (see salus %s --help)", a, name);
		if (i + 1 >= argc)
			return salus_cli_fail(name, 2, "%s needs a value", a);
		*dst = argv[++i];
	}
	if (!o->data)
		return salus_cli_fail(name, 2, "--data DIR is required (see salus %s --help)", name);
	return 0;
}

/* Open the store and the users context (creating keys/pepper.key in an older data directory). */
static int open_users(const char *name, const char *dir, struct salus_store **st, struct salus_users **u)
{
	struct salus_config cfg;
	const char *why = NULL;
	int rc = salus_config_load(&cfg, dir, &why);
	if (rc)
		return salus_cli_fail(name, 1, "%s", why ? why : salus_err_msg(rc));
	char pepper[SALUS_PATH_MAX];
	if (salus_config_path(&cfg, "keys/pepper.key", pepper))
		return salus_cli_fail(name, 1, "bad data directory path");
	struct salus_store_opts so = {.create = false, .readers = 1};
	rc = salus_cli_open_store(&cfg, &so, st, &why);
	if (rc == SALUS_ENOTFOUND)
		return salus_cli_fail(name, 1, "no database or keyring in %s (run salus init)", dir);
	if (rc)
		return salus_cli_fail(name, 1, "cannot open the store: %s", why);
	if (access(pepper, F_OK) && (rc = salus_pepper_create(pepper)) && rc != SALUS_EEXISTS) {
		salus_store_free(*st);
		return salus_cli_fail(name, 1, "cannot create %s: %s", pepper, salus_err_msg(rc));
	}
	if ((rc = salus_users_new(*st, pepper, NULL, u))) {
		salus_store_free(*st);
		return salus_cli_fail(name, 1, "cannot load %s: %s", pepper, salus_err_msg(rc));
	}
	return 0;
}

static void close_users(struct salus_store *st, struct salus_users *u)
{
	salus_users_free(u);
	salus_store_free(st);
}

/* A QR code as UTF-8 half blocks (two modules per character row), quiet zone of 2. */
static void print_qr(const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!q)
		return;
	int w = q->width, m = 2;
	for (int y = -m; y < w + m; y += 2) {
		for (int x = -m; x < w + m; x++) {
			bool top = y >= 0 && y < w && x >= 0 && x < w && (q->data[y * w + x] & 1);
			bool bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w && (q->data[(y + 1) * w + x] & 1);
			/* dark modules print as spaces on a light background (inverted for terminals) */
			fputs(top && bot ? " " : top ? "\xe2\x96\x84" : bot ? "\xe2\x96\x80" : "\xe2\x96\x88", stdout);
		}
		fputc('\n', stdout);
	}
	QRcode_free(q);
}

/* Write n bytes to a new private file (0600; an existing file is truncated, a symlink refused). */
static bool write_private(const char *path, const char *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, p, n) == (ssize_t)n && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int show_enrolment(const char *name, const char *username, const struct salus_mfa_enrolment *m,
			  const char *totp_out, const char *qr_out)
{
	char uri[512];
	bool have_uri = salus_totp_uri("Salus", username, m->secret_b32, uri, sizeof uri) == 0;
	if (have_uri) {
		printf("TOTP enrolment for %s (scan with an authenticator app; shown once):\n%s\n", username, uri);
		if (isatty(STDOUT_FILENO))
			print_qr(uri);
	}
	printf("recovery codes (each works once; store them offline):\n");
	for (int i = 0; i < SALUS_RECOVERY_CODES; i++)
		printf("  %s\n", m->recovery[i]);
	if (totp_out) {
		int fd = open(totp_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		size_t n = strlen(m->secret_b32);
		bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, m->secret_b32, n) == (ssize_t)n &&
			  write(fd, "\n", 1) == 1 && fsync(fd) == 0;
		if (fd >= 0)
			close(fd);
		if (!ok)
			return salus_cli_fail(name, 1, "cannot write %s", totp_out);
	}
	/* last, so that a failure here still leaves the enrolment printed above */
	if (qr_out) {
		char *svg = NULL;
		size_t n = 0;
		bool ok = have_uri && salus_totp_qr_svg(uri, &svg, &n) == 0 && write_private(qr_out, svg, n);
		if (svg)
			sodium_memzero(svg, n);
		salus_free(svg);
		if (!ok)
			return salus_cli_fail(name, 1, "cannot write the QR code to %s", qr_out);
	}
	return 0;
}

static int cmd_add(int argc, char **argv)
{
	const char *name = "user add";
	struct opts o = {0};
	int rc = parse(name, usage_add, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!o.username || !o.role || !o.password_file || o.id)
		return salus_cli_fail(name, 2, "--username, --role and --password-file are required (see --help)");
	enum salus_role role;
	if (salus_role_parse(o.role, &role))
		return salus_cli_fail(name, 2, "unknown role '%s' (admin, clinician, nurse, front-desk, billing, "
					       "auditor, patient, related-person)", o.role);
	if ((o.practitioner != NULL) + (o.patient != NULL) + (o.related != NULL) > 1)
		return salus_cli_fail(name, 2, "give one of --practitioner, --patient and --related-person");
	if (o.related && role != SALUS_ROLE_RELATED_PERSON)
		return salus_cli_fail(name, 2, "--related-person is for the role related-person");
	if (o.patient && role == SALUS_ROLE_RELATED_PERSON)
		return salus_cli_fail(name, 2, "a related person is linked with --related-person ID");
	if (salus_crypto_init())
		return salus_cli_fail(name, 1, "libsodium failed to initialise");
	char pw[SALUS_PASSWORD_MAX + 2];
	size_t pn = 0;
	rc = salus_cli_read_secret(o.password_file, pw, sizeof pw, &pn);
	if (rc) {
		sodium_memzero(pw, sizeof pw);
		return salus_cli_fail(name, 1, rc == SALUS_ENOTFOUND ? "cannot open the password file"
					       : rc == SALUS_ETOOLARGE ? "the password is longer than 1024 bytes"
								       : "cannot read the password file");
	}
	struct salus_store *st;
	struct salus_users *u;
	if ((rc = open_users(name, o.data, &st, &u))) {
		sodium_memzero(pw, sizeof pw);
		return rc;
	}
	struct salus_user_new nu = {.username = o.username, .role = role, .password = pw, .password_n = pn,
				    .practitioner = o.practitioner, .patient = o.related ? o.related : o.patient};
	struct salus_mfa_enrolment m;
	const char *why = NULL;
	rc = salus_user_add(u, &nu, &m, &why);
	sodium_memzero(pw, sizeof pw);
	char q[SALUS_USERNAME_MAX + 96];
	snprintf(q, sizeof q, "action=user-add&user=%s&role=%s", o.username, o.role);
	int arc = salus_cli_audit_admin(name, o.data, st, q, rc);
	close_users(st, u);
	if (arc) {
		if (!rc)
			salus_mfa_enrolment_clear(&m);
		return arc;
	}
	if (rc)
		return salus_cli_fail(name, 1, "%s", why ? why : salus_err_msg(rc));
	printf("user %s added (role %s%s)\n", o.username, o.role,
	       salus_role_is_staff(role) ? "; MFA required at first login" : "");
	rc = show_enrolment(name, o.username, &m, o.totp_out, o.qr_out);
	salus_mfa_enrolment_clear(&m);
	return rc;
}

static int print_user(void *ctx, const struct salus_user_info *ui)
{
	(void)ctx;
	printf("%s\t%s\t%s\t%s\tmfa=%s\t%s\n", ui->username, ui->role, ui->link[0] ? ui->link : "-",
	       ui->disabled ? "disabled" : "active", ui->mfa_enrolled ? "enrolled" : "pending", ui->created);
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	const char *name = "user list";
	struct opts o = {0};
	int rc = parse(name, usage_list, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct salus_store *st;
	struct salus_users *u;
	if ((rc = open_users(name, o.data, &st, &u)))
		return rc;
	rc = salus_user_list(u, print_user, NULL);
	close_users(st, u);
	return rc ? salus_cli_fail(name, 1, "cannot list users: %s", salus_err_msg(rc)) : 0;
}

static int cmd_simple(const char *name, const char *usage, int argc, char **argv)
{
	struct opts o = {0};
	int rc = parse(name, usage, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	bool role = !strcmp(name, "user set-role"), reset = !strcmp(name, "user reset-mfa");
	if (!o.username || (role != (o.role != NULL)) || (!reset && (o.totp_out || o.qr_out)))
		return salus_cli_fail(name, 2, "missing or unexpected options (see salus %s --help)", name);
	enum salus_role r = SALUS_ROLE_ADMIN;
	if (role && salus_role_parse(o.role, &r))
		return salus_cli_fail(name, 2, "unknown role '%s'", o.role);
	struct salus_store *st;
	struct salus_users *u;
	if ((rc = open_users(name, o.data, &st, &u)))
		return rc;
	const char *why = NULL;
	struct salus_mfa_enrolment m;
	if (role)
		rc = salus_user_set_role(u, o.username, r, &why);
	else if (reset)
		rc = salus_user_reset_mfa(u, o.username, &m);
	else
		rc = salus_user_disable(u, o.username);
	char q[SALUS_USERNAME_MAX + 96];
	snprintf(q, sizeof q, "action=%s&user=%s%s%s", role ? "user-set-role" : reset ? "user-reset-mfa" : "user-disable",
		 o.username, role ? "&role=" : "", role ? o.role : "");
	int arc = salus_cli_audit_admin(name, o.data, st, q, rc);
	close_users(st, u);
	if (arc) {
		if (reset && !rc)
			salus_mfa_enrolment_clear(&m);
		return arc;
	}
	if (rc == SALUS_ENOTFOUND)
		return salus_cli_fail(name, 1, "no user %s", o.username);
	if (rc)
		return salus_cli_fail(name, 1, "%s", why ? why : salus_err_msg(rc));
	if (reset) {
		rc = show_enrolment(name, o.username, &m, o.totp_out, o.qr_out);
		salus_mfa_enrolment_clear(&m);
		return rc;
	}
	printf("user %s: %s\n", o.username, role ? "role changed" : "disabled");
	return 0;
}

static int print_session(void *ctx, const struct salus_session_info *si)
{
	(void)ctx;
	char c[SALUS_INSTANT_LEN], s[SALUS_INSTANT_LEN];
	salus_instant_format(si->created_ms, c);
	salus_instant_format(si->seen_ms, s);
	printf("%s\t%s\t%s\t%s\t%s\n", si->id, si->username, si->remote[0] ? si->remote : "-", c, s);
	return 0;
}

static int cmd_sessions(int argc, char **argv)
{
	const char *name = "user sessions";
	struct opts o = {0};
	int rc = parse(name, usage_sessions, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	struct salus_store *st;
	struct salus_users *u;
	if ((rc = open_users(name, o.data, &st, &u)))
		return rc;
	rc = salus_session_list(u, o.username, print_session, NULL);
	close_users(st, u);
	return rc ? salus_cli_fail(name, 1, "cannot list sessions: %s", salus_err_msg(rc)) : 0;
}

static int cmd_revoke(int argc, char **argv)
{
	const char *name = "user revoke-session";
	struct opts o = {0};
	int rc = parse(name, usage_revoke, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!o.id == !o.username)
		return salus_cli_fail(name, 2, "give --id ID or --username U");
	struct salus_store *st;
	struct salus_users *u;
	if ((rc = open_users(name, o.data, &st, &u)))
		return rc;
	rc = salus_session_revoke(u, o.id, o.id ? NULL : o.username);
	char q[SALUS_USERNAME_MAX + 160];
	snprintf(q, sizeof q, "action=session-revoke&%s=%s", o.id ? "session" : "user", o.id ? o.id : o.username);
	int arc = salus_cli_audit_admin(name, o.data, st, q, rc);
	close_users(st, u);
	if (arc)
		return arc;
	if (rc == SALUS_ENOTFOUND)
		return salus_cli_fail(name, 1, "no such session");
	if (rc)
		return salus_cli_fail(name, 1, "cannot revoke: %s", salus_err_msg(rc));
	printf("revoked\n");
	return 0;
}

int salus_cmd_user(int argc, char **argv)
{
	if (argc < 2)
		return salus_cli_fail("user", 2, "which subcommand? (see salus user --help)");
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "help")) {
		fputs(usage_main, stdout);
		fputs(usage_add, stdout);
		fputs(usage_list, stdout);
		fputs(usage_disable, stdout);
		fputs(usage_reset, stdout);
		fputs(usage_role, stdout);
		fputs(usage_sessions, stdout);
		fputs(usage_revoke, stdout);
		return 0;
	}
	if (!strcmp(sub, "add"))
		return cmd_add(argc - 1, argv + 1);
	if (!strcmp(sub, "list"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(sub, "disable"))
		return cmd_simple("user disable", usage_disable, argc - 1, argv + 1);
	if (!strcmp(sub, "reset-mfa"))
		return cmd_simple("user reset-mfa", usage_reset, argc - 1, argv + 1);
	if (!strcmp(sub, "set-role"))
		return cmd_simple("user set-role", usage_role, argc - 1, argv + 1);
	if (!strcmp(sub, "sessions"))
		return cmd_sessions(argc - 1, argv + 1);
	if (!strcmp(sub, "revoke-session"))
		return cmd_revoke(argc - 1, argv + 1);
	return salus_cli_fail("user", 2, "unknown subcommand '%s' (see salus user --help)", sub);
}
