/*
 * cmd_quantize.c: `minnow quantize IN.gguf OUT.gguf TYPE [--keep-output-f16]`.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "tools.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow quantize IN.gguf OUT.gguf TYPE [--keep-output-f16]\n\n"
            "Requantizes the 2-D weights of a model (norms and biases stay f32).\n"
            "  TYPE                 f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K, or q4_k_m (Q4_K with Q6_K for the\n"
            "                       classifier and some layers' attn_v / ffn_down)\n"
            "  --keep-output-f16    keep the classifier (or tied embedding) at f16\n"
            "Rows that do not fit a type's block size fall back to the nearest type that fits (reported).\n");
}

static void log_note(const char *msg) { fprintf(stderr, "minnow quantize: note: %s\n", msg); }

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {0};
    int n_pos = 0, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--keep-output-f16")) {
            keep = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "minnow quantize: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            fprintf(stderr, "minnow quantize: too many arguments\n");
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    mn_error err = {0};
    double t0 = cli_now();
    if (mn_quantize_model(pos[0], pos[1], pos[2], keep, cli_progress, "quantize", log_note, &err) != MN_OK) {
        fprintf(stderr, "minnow quantize: %s\n", err.message);
        return 1;
    }
    fprintf(stderr, "minnow quantize: wrote %s (%s) in %.1f s\n", pos[1], pos[2], cli_now() - t0);
    return 0;
}
