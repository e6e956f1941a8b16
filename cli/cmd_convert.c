/*
 * cmd_convert.c: `minnow convert llama2c IN.bin OUT.gguf [--type f32|f16|q8_0]`.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "kernels/types.h"
#include "tools.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow convert llama2c IN.bin OUT.gguf [--type f32|f16|q8_0]\n\n"
            "Converts a llama2.c checkpoint into a standard `llama` GGUF file (a placeholder\n"
            "vocabulary is written: <unk>, <s>, </s>, 256 byte tokens, then <tok_N>).\n"
            "  --type T   matrix weight type (default f32); rows that do not fit a block fall back to f16\n");
}

static void log_note(const char *msg) { fprintf(stderr, "minnow convert: note: %s\n", msg); }

int cmd_convert(int argc, char **argv) {
    const char *pos[3] = {0};
    int n_pos = 0;
    const char *type_name = "f32";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--type")) {
            if (++i >= argc) {
                fprintf(stderr, "minnow convert: --type needs a value\n");
                return 2;
            }
            type_name = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "minnow convert: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            fprintf(stderr, "minnow convert: too many arguments\n");
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    if (strcmp(pos[0], "llama2c") != 0) {
        fprintf(stderr, "minnow convert: unknown source format '%s' (supported: llama2c)\n", pos[0]);
        return 2;
    }
    int32_t type = mn_type_from_name(type_name);
    if (type != MN_TYPE_F32 && type != MN_TYPE_F16 && type != MN_TYPE_Q8_0) {
        fprintf(stderr, "minnow convert: --type must be f32, f16 or q8_0 (got '%s')\n", type_name);
        return 2;
    }
    mn_error err = {0};
    double t0 = cli_now();
    mn_status s = mn_convert_llama2c(pos[1], pos[2], type, cli_progress, "converting", log_note, &err);
    if (s != MN_OK) {
        fprintf(stderr, "minnow convert: %s\n", err.message);
        return 1;
    }
    fprintf(stderr, "minnow convert: wrote %s (%s) in %.2f s\n", pos[2], type_name, cli_now() - t0);
    return 0;
}
