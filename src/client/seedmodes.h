/* seedmodes.h - the client front ends that reproduce seed documents exactly.
 *
 * ferry's main() hands over to these when the first option is --stream or
 * --compat comp431; each receives argv with that option removed
 * (argv[0] is still the program name) and returns the process exit code. */
#ifndef FERRY_SEEDMODES_H
#define FERRY_SEEDMODES_H

/* ferry --stream HOST PORT GET|PUT|DEL FILE  (seed 001's client) */
int stream_client_main(int argc, char **argv);
/* ferry --compat comp431 DATAPORT  (seed 004's client, commands on stdin) */
int comp431_client_main(int argc, char **argv);

#endif
