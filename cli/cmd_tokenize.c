/*
 * cmd_tokenize.c: `minnow tokenize -m MODEL (--text S | -f FILE) [--ids] [--special] [--no-bos]`
 * shows how a model's vocabulary splits a text: one `id 'piece'` line per token, or with --ids
 * just the ids, space-separated on one line (for scripts and golden tests).
 *
 * Only the vocabulary is loaded (mn_tokenizer_load reads the GGUF metadata; weights are never
 * touched), so it works on full models and on vocabulary-only files alike. Pieces are printed with
 * special tokens shown and every byte that is not printable UTF-8 escaped (\n, \t, \xNN; a quote
 * or backslash gets a backslash), so a piece that is half a character, or hostile text, cannot
 * drive the terminal. Errors go to stderr: exit 1 for runtime errors, 2 for usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "minnow.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow tokenize -m MODEL (--text S | -f FILE) [--ids] [--special] [--no-bos]\n"
            "\n"
            "Prints the tokens a model's vocabulary turns the text into: one `id 'piece'` line each.\n"
            "\n"
            "  -m, --model PATH  GGUF file with a vocabulary (a model or a vocabulary-only file)\n"
            "  -t, --text S      the text to tokenize\n"
            "  -f, --file FILE   read the text from FILE ('-': standard input); at most %zu MiB\n"
            "      --ids         print only the ids, space-separated, on one line\n"
            "      --special     parse special-token text (\"<|im_start|>\") into special tokens;\n"
            "                    without it, such text is ordinary text\n"
            "      --no-bos      do not prepend BOS even when the vocabulary asks for it\n"
            "  -h, --help        this help\n",
            MN_TOKENIZE_MAX_BYTES >> 20);
}

/* Length of the valid UTF-8 character at s (n bytes left), or 0. */
static size_t utf8_char(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || len > n) return 0;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static void print_escaped(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = utf8_char(p + i, n - i);
        if (len > 1) {
            /* U+0080..U+009F are C1 controls: escape them too */
            if (len == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0) {
                printf("\\xc2\\x%02x", p[i + 1]);
            } else {
                fwrite(p + i, 1, len, stdout);
            }
            i += len;
            continue;
        }
        if (c == '\'' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20 || c >= 0x7F) printf("\\x%02x", c);
        else putchar((int)c);
        i++;
    }
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL;
    int ids_only = 0, special = 0, no_bos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **value = !strcmp(a, "-m") || !strcmp(a, "--model")  ? &model
                             : !strcmp(a, "-t") || !strcmp(a, "--text") ? &text
                             : !strcmp(a, "-f") || !strcmp(a, "--file") ? &file
                                                                        : NULL;
        if (value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "minnow tokenize: %s needs a value\n", a);
                return 2;
            }
            *value = argv[++i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--ids")) {
            ids_only = 1;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else {
            fprintf(stderr, "minnow tokenize: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "minnow tokenize: -m MODEL is required (see --help)\n");
        return 2;
    }
    if (!text == !file) {
        fprintf(stderr, "minnow tokenize: give exactly one of --text S and -f FILE (see --help)\n");
        return 2;
    }

    char *owned = NULL;
    size_t len;
    if (file) {
        owned = cli_read_file("tokenize", !strcmp(file, "-") ? "/dev/stdin" : file, MN_TOKENIZE_MAX_BYTES, &len);
        if (!owned) return 1;
        text = owned;
    } else {
        len = strlen(text);
    }

    mn_tokenizer *tok = NULL;
    mn_error err = {0};
    mn_status s = mn_tokenizer_load(model, &tok, &err);
    if (s != MN_OK) {
        fprintf(stderr, "minnow tokenize: %s\n", err.message[0] ? err.message : mn_strerror(s));
        free(owned);
        return 1;
    }
    int flags = (no_bos ? 0 : MN_TOKENIZE_ADD_BOS) | (special ? MN_TOKENIZE_PARSE_SPECIAL : 0);
    size_t cap = MN_TOKENIZE_MAX_TOKENS(len), n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    s = ids ? mn_tokenize(tok, text, len, flags, ids, cap, &n) : MN_ENOMEM;
    if (s != MN_OK) {
        fprintf(stderr, "minnow tokenize: %s\n",
                s == MN_ETOOBIG ? "text too long for one call" : mn_strerror(s));
        free(ids);
        free(owned);
        mn_tokenizer_free(tok);
        return 1;
    }
    if (ids_only) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    } else {
        char piece[256];
        for (size_t i = 0; i < n; i++) {
            size_t plen = 0;
            char *big = NULL;
            const char *p = piece;
            if (mn_token_to_piece(tok, ids[i], 1, piece, sizeof piece, &plen) == MN_EFULL) {
                big = malloc(plen);
                if (big && mn_token_to_piece(tok, ids[i], 1, big, plen, &plen) == MN_OK) p = big;
                else plen = 0;
            }
            printf("%6d '", ids[i]);
            print_escaped(p, plen);
            printf("'\n");
            free(big);
        }
    }
    int rc = fflush(stdout) == 0 ? 0 : 1;
    if (rc) fprintf(stderr, "minnow tokenize: cannot write the output\n");
    free(ids);
    free(owned);
    mn_tokenizer_free(tok);
    return rc;
}
