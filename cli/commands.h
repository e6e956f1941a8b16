/*
 * commands.h: the minnow CLI's subcommands. Each is a thin layer over the public API (and, for the
 * tools, src/gguf): int cmd_X(int argc, char **argv) with argv[0] = the subcommand name. Return
 * value is the process exit code: 0 ok, 1 runtime error (message on stderr), 2 usage error.
 */
#ifndef MN_CLI_COMMANDS_H
#define MN_CLI_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
