/*
 * cmd_synth.c: `minnow synth --arch SHAPE --type TYPE --out FILE.gguf [--vocab-from V.gguf |
 * --vocab-size N] [--seed S]`: a random-weight model with a real architecture's shapes.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "kernels/types.h"
#include "tools.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow synth --arch SHAPE --type TYPE --out FILE.gguf [--vocab-from VOCAB.gguf | --vocab-size N] [--seed S]\n\n"
            "Writes a random-weight model (weights ~N(0, 0.02), norms 1) with the exact shapes and standard\n"
            "GGUF metadata of a real architecture, for benchmarks and tests.\n"
            "  --arch SHAPE       %s\n"
            "  --type TYPE        f32, f16, bf16, q8_0, q4_0 (and any type `minnow quantize` writes)\n"
            "  --vocab-from FILE  copy the vocabulary (tokenizer.* metadata) from a GGUF file\n"
            "  --vocab-size N     placeholder vocabulary of N tokens (default: the real model's size)\n"
            "  --seed S           random seed (default 42)\n",
            mn_synth_shapes());
}

static void log_note(const char *msg) { fprintf(stderr, "minnow synth: note: %s\n", msg); }

int cmd_synth(int argc, char **argv) {
    const char *shape = NULL, *type_name = NULL, *out = NULL, *vocab = NULL;
    int64_t vocab_size = 0, seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "minnow synth: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--arch")) shape = v;
        else if (!strcmp(a, "--type")) type_name = v;
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--vocab-from")) vocab = v;
        else if (!strcmp(a, "--vocab-size")) { if (!cli_parse_i64("synth", a, v, 1, 1 << 24, &vocab_size)) return 2; }
        else if (!strcmp(a, "--seed")) { if (!cli_parse_i64("synth", a, v, 0, INT64_MAX, &seed)) return 2; }
        else {
            fprintf(stderr, "minnow synth: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!shape || !type_name || !out) {
        fprintf(stderr, "minnow synth: --arch, --type and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (vocab && vocab_size) {
        fprintf(stderr, "minnow synth: give --vocab-from or --vocab-size, not both\n");
        return 2;
    }
    int32_t type = mn_type_from_name(type_name);
    const mn_type_traits *tt = type >= 0 ? mn_type_get(type) : NULL;
    if (!tt || !tt->from_f32) {
        fprintf(stderr, "minnow synth: cannot write type '%s'\n", type_name);
        return 2;
    }
    mn_error err = {0};
    double t0 = cli_now();
    if (mn_synth_model(shape, type, vocab, (int32_t)vocab_size, (uint64_t)seed, out, cli_progress, "synth",
                       log_note, &err) != MN_OK) {
        fprintf(stderr, "minnow synth: %s\n", err.message);
        return 1;
    }
    fprintf(stderr, "minnow synth: wrote %s (%s, %s) in %.1f s\n", out, shape, tt->name, cli_now() - t0);
    return 0;
}
