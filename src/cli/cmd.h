/*
 * cmd.h — the salus subcommands.  Each is `int salus_cmd_NAME(int argc, char **argv)`
 * with argv[0] = the subcommand name; returns the process exit status
 * (0 ok, 1 failure, 2 usage error).  Every command answers --help.
 */
#ifndef SALUS_CLI_CMD_H
#define SALUS_CLI_CMD_H

int salus_cmd_audit(int argc, char **argv);
int salus_cmd_backup(int argc, char **argv);
int salus_cmd_client(int argc, char **argv);
int salus_cmd_deid(int argc, char **argv);
/* `salus deid fhir [FILE]` (cmd_deid_fhir.c), dispatched by salus_cmd_deid; argv[0] = "fhir". */
int salus_cli_deid_fhir(int argc, char **argv);
int salus_cmd_gen(int argc, char **argv);
int salus_cmd_init(int argc, char **argv);
int salus_cmd_key(int argc, char **argv);
int salus_cmd_load(int argc, char **argv);
int salus_cmd_patient(int argc, char **argv);
int salus_cmd_reindex(int argc, char **argv);
int salus_cmd_report(int argc, char **argv);
int salus_cmd_serve(int argc, char **argv);
int salus_cmd_user(int argc, char **argv);
int salus_cmd_version(int argc, char **argv);

/* One-line error to stderr: "salus CMD: message\n".  Returns `status`. */
int salus_cli_fail(const char *cmd, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
