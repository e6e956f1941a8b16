/*
 * main.c: the `minnow` binary: dispatches to one subcommand per job (see commands.h).
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "minnow.h"

typedef struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command COMMANDS[] = {
    {"run", cmd_run, "generate text (or token ids) from a model"},
    {"chat", cmd_chat, "interactive chat with the model's chat template"},
    {"perplexity", cmd_perplexity, "measure a model's perplexity on a text or token file"},
    {"inspect", cmd_inspect, "print a GGUF file's metadata and tensors"},
    {"tokenize", cmd_tokenize, "turn text into token ids with a model's vocabulary"},
    {"convert", cmd_convert, "convert a checkpoint (llama2c) into GGUF"},
    {"quantize", cmd_quantize, "requantize a GGUF model's weights"},
    {"synth", cmd_synth, "write a random-weight model with a real architecture's shapes"},
    {"bench", cmd_bench, "measure prefill/decode speed against the memory-bandwidth bound"},
    {"serve", cmd_serve, "serve the OpenAI-compatible HTTP API with continuous batching"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: minnow <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\n`minnow <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("minnow %s\n", mn_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "minnow: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
