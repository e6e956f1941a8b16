/*
 * cmd_bench.c: `minnow bench`: prefill and decode speed against the machine's physical limits,
 * measured in the same run.
 *
 * Right before a model's measurements it probes memory read bandwidth (all threads summing 64-bit
 * words of a 1 GiB buffer, best of 5). Decode efficiency = decode tok/s / (bandwidth / weight bytes
 * streamed per token). Prefill reports GFLOP/s (2 FLOPs per weight per token plus attention).
 * Repeats of different thread counts are interleaved (A/B/A/B...) so drift on a noisy host hits
 * them alike; every figure is min / median / max over the repeats.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "minnow.h"
#include "util.h"

#define MAX_LIST 16

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow bench -m MODEL [-t 1,2] [-p 128,512] [-n 64] [-d 0,1024] [-r 5] [--json]\n\n"
            "  -m, --model FILE    GGUF model (repeat -m for several models)\n"
            "  -t, --threads LIST  thread counts (default: 1 and all cores)\n"
            "  -p, --prompt LIST   prefill lengths (default 128,512; 0 = none)\n"
            "  -n, --gen N         decode steps per measurement (default 64; 0 = none)\n"
            "  -d, --depth LIST    context depths for decode (default 0)\n"
            "  -r, --repeats N     repeats of each measurement (default 5)\n"
            "      --kv-type T     KV cache type: f32, f16, q8_0 (default: f32 for f32 models, else f16)\n"
            "      --mmap          compute from the file mapping instead of a copy in huge pages\n"
            "      --json          one JSON object per line per measurement\n");
}

static int parse_list(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out, int *n) {
    *n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s ? s : "");
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*n == MAX_LIST) {
            fprintf(stderr, "minnow bench: %s: at most %d values\n", flag, MAX_LIST);
            return 0;
        }
        if (!cli_parse_i64("bench", flag, tok, lo, hi, &out[(*n)++])) return 0;
    }
    if (*n == 0) {
        fprintf(stderr, "minnow bench: %s needs a list of values\n", flag);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- bandwidth probe ------------ */

typedef struct probe {
    const uint64_t *buf;
    size_t n;
    int ith, nth;
    uint64_t sum;
} probe;

static void *probe_main(void *p) {
    probe *pr = p;
    size_t per = pr->n / (size_t)pr->nth, i0 = per * (size_t)pr->ith, i1 = pr->ith == pr->nth - 1 ? pr->n : i0 + per;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = i0; i + 4 <= i1; i += 4) {
        s0 += pr->buf[i];
        s1 += pr->buf[i + 1];
        s2 += pr->buf[i + 2];
        s3 += pr->buf[i + 3];
    }
    pr->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* GB/s (1e9 bytes) of nth threads reading `bytes`, best of `reps`. */
static double bandwidth(const uint64_t *buf, size_t bytes, int nth, int reps) {
    double best = 0.0;
    probe pr[64];
    pthread_t th[64];
    if (nth > 64) nth = 64;
    for (int r = 0; r < reps; r++) {
        double t0 = cli_now();
        for (int i = 0; i < nth; i++) {
            pr[i] = (probe){buf, bytes / 8, i, nth, 0};
            if (i) pthread_create(&th[i], NULL, probe_main, &pr[i]);
        }
        probe_main(&pr[0]);
        for (int i = 1; i < nth; i++) pthread_join(th[i], NULL);
        double dt = cli_now() - t0;
        volatile uint64_t sink = 0;
        for (int i = 0; i < nth; i++) sink += pr[i].sum;
        (void)sink;
        double gbs = (double)bytes / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

/* ---------------------------------------------------------------- measurements --------------- */

typedef struct stats3 {
    double min, median, max;
} stats3;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static stats3 summarize(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    stats3 s = {v[0], n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v[n - 1]};
    return s;
}

static uint64_t rng_state = 0x1234567;
static int32_t rand_token(int32_t n_vocab) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((rng_state >> 33) % (uint64_t)n_vocab);
}

/* Evaluates n random tokens from position `at` in batches of up to n_batch; returns seconds. */
static double eval_tokens(mn_context *ctx, int32_t n_vocab, int at, int n, int n_batch, int32_t *tok, int32_t *pos,
                          int *ok) {
    double t0 = cli_now();
    for (int done = 0; done < n;) {
        int k = n - done < n_batch ? n - done : n_batch;
        for (int i = 0; i < k; i++) {
            tok[i] = rand_token(n_vocab);
            pos[i] = at + done + i;
        }
        mn_batch b = {k, tok, pos, NULL, NULL};
        if (mn_context_eval(ctx, &b) != MN_OK) {
            fprintf(stderr, "minnow bench: %s\n", mn_context_errmsg(ctx));
            *ok = 0;
            return 1.0;
        }
        done += k;
    }
    return cli_now() - t0;
}

/* Resident memory now (model pages touched + contexts); the probe buffer is freed by then. */
static long rss_mb(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * 4096 / (1024 * 1024);
}

int cmd_bench(int argc, char **argv) {
    const char *models[8];
    int n_models = 0, json = 0, n_thr = 0, n_pp = 2, n_depth = 1, kv_type = 0, use_mmap = 0;
    int64_t thr[MAX_LIST], pp[MAX_LIST] = {128, 512}, depth[MAX_LIST] = {0}, n_gen = 64, reps = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        } else if (!strcmp(a, "--mmap")) {
            use_mmap = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "minnow bench: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (n_models == 8) {
                fprintf(stderr, "minnow bench: at most 8 models\n");
                return 2;
            }
            models[n_models++] = v;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!parse_list(a, v, 1, 256, thr, &n_thr)) return 2;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!parse_list(a, v, 0, 65536, pp, &n_pp)) return 2;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--depth")) {
            if (!parse_list(a, v, 0, 1 << 20, depth, &n_depth)) return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--gen")) {
            if (!cli_parse_i64("bench", a, v, 0, 1 << 16, &n_gen)) return 2;
        } else if (!strcmp(a, "--kv-type")) {
            if ((kv_type = cli_parse_kv_type("bench", v)) < 0) return 2;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repeats")) {
            if (!cli_parse_i64("bench", a, v, 1, 1000, &reps)) return 2;
        } else {
            fprintf(stderr, "minnow bench: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (n_models == 0) {
        fprintf(stderr, "minnow bench: -m MODEL is required\n");
        usage(stderr);
        return 2;
    }
    if (n_thr == 0) {
        int cores = 0;
        FILE *f = popen("nproc", "r");
        if (f) {
            if (fscanf(f, "%d", &cores) != 1) cores = 0;
            pclose(f);
        }
        thr[n_thr++] = 1;
        if (cores > 1) thr[n_thr++] = cores;
    }
    int64_t max_pp = 0, max_depth = 0;
    for (int i = 0; i < n_pp; i++)
        if (pp[i] > max_pp) max_pp = pp[i];
    for (int i = 0; i < n_depth; i++)
        if (depth[i] > max_depth) max_depth = depth[i];
    int n_ctx = (int)(max_pp > max_depth + n_gen ? max_pp : max_depth + n_gen);
    if (n_ctx < 16) n_ctx = 16;
    int n_batch = (int)(max_pp > 512 ? max_pp : 512);

    size_t probe_bytes = (size_t)1 << 30;
    int32_t *tok = malloc((size_t)n_batch * sizeof *tok), *pos = malloc((size_t)n_batch * sizeof *pos);
    double *samples = malloc((size_t)reps * MAX_LIST * sizeof *samples);
    if (!tok || !pos || !samples) {
        free(tok);
        free(pos);
        free(samples);
        return 1;
    }
    int rc = 0;
    if (!json)
        printf("| model | type | test | threads | tok/s min | median | max | efficiency / GFLOP/s |\n"
               "|---|---|---|---|---|---|---|---|\n");
    for (int mi = 0; mi < n_models && rc == 0; mi++) {
        mn_error err = {0};
        mn_model *model = NULL;
        double t_load = cli_now();
        mn_model_params mp = mn_model_default_params();
        mp.mode = use_mmap ? MN_WEIGHTS_MMAP : MN_WEIGHTS_COPY;
        if (mn_model_load(models[mi], &mp, &model, &err) != MN_OK) {
            fprintf(stderr, "minnow bench: %s\n", err.message);
            rc = 1;
            break;
        }
        t_load = cli_now() - t_load;
        mn_model_info info;
        mn_model_get_info(model, &info);
        const char *name = strrchr(models[mi], '/') ? strrchr(models[mi], '/') + 1 : models[mi];
        double bw[MAX_LIST];
        uint64_t *buf = malloc(probe_bytes);
        if (!buf) {
            fprintf(stderr, "minnow bench: cannot allocate the 1 GiB bandwidth probe buffer\n");
            mn_model_free(model);
            rc = 1;
            break;
        }
        for (size_t i = 0; i < probe_bytes / 8; i++) buf[i] = i;
        for (int ti = 0; ti < n_thr; ti++) bw[ti] = bandwidth(buf, probe_bytes, (int)thr[ti], 5);
        free(buf);
        mn_context *ctx[MAX_LIST] = {0};
        for (int ti = 0; ti < n_thr && rc == 0; ti++) {
            mn_context_params cp = mn_context_default_params();
            cp.n_ctx = n_ctx;
            cp.n_batch = n_batch;
            cp.n_threads = (int32_t)thr[ti];
            cp.kv_type = kv_type;
            if (mn_context_create(model, &cp, &ctx[ti], &err) != MN_OK) {
                fprintf(stderr, "minnow bench: %s\n", err.message);
                rc = 1;
            }
        }
        if (json)
            printf("{\"model\": \"%s\", \"type\": \"%s\", \"test\": \"load\", \"seconds\": %.3f, \"weight_bytes\": %llu, "
                   "\"bytes_per_token\": %llu, \"params\": %lld}\n",
                   name, info.type_name, t_load, (unsigned long long)info.weight_bytes,
                   (unsigned long long)info.bytes_per_token, (long long)info.n_params);
        for (int ti = 0; ti < n_thr; ti++)
            if (json)
                printf("{\"model\": \"%s\", \"type\": \"%s\", \"test\": \"bandwidth\", \"threads\": %lld, \"gb_s\": %.2f}\n",
                       name, info.type_name, (long long)thr[ti], bw[ti]);
            else
                fprintf(stderr, "minnow bench: %s: memory read bandwidth %.1f GB/s at %lld threads; %.1f MB per token\n",
                        name, bw[ti], (long long)thr[ti], (double)info.bytes_per_token / 1e6);
        /* prefill tests, then decode tests; repeats interleaved across thread counts */
        for (int kind = 0; kind < 2 && rc == 0; kind++) {
            int n_tests = kind == 0 ? n_pp : n_depth;
            for (int k = 0; k < n_tests && rc == 0; k++) {
                if (kind == 0 && pp[k] == 0) continue;
                if (kind == 1 && n_gen == 0) continue;
                for (int r = 0; r < reps && rc == 0; r++)
                    for (int ti = 0; ti < n_thr && rc == 0; ti++) {
                        int ok = 1;
                        mn_context_kv_truncate(ctx[ti], 0, 0);
                        double dt;
                        if (kind == 0) {
                            dt = eval_tokens(ctx[ti], info.n_vocab, 0, (int)pp[k], n_batch, tok, pos, &ok);
                            samples[ti * reps + r] = (double)pp[k] / dt;
                        } else {
                            if (depth[k] > 0) eval_tokens(ctx[ti], info.n_vocab, 0, (int)depth[k], n_batch, tok, pos, &ok);
                            dt = eval_tokens(ctx[ti], info.n_vocab, (int)depth[k], (int)n_gen, 1, tok, pos, &ok);
                            samples[ti * reps + r] = (double)n_gen / dt;
                        }
                        if (!ok) rc = 1;
                    }
                if (rc) break;
                for (int ti = 0; ti < n_thr; ti++) {
                    stats3 s = summarize(samples + ti * reps, (int)reps);
                    char test[64];
                    if (kind == 0) snprintf(test, sizeof test, "pp%lld", (long long)pp[k]);
                    else if (depth[k] == 0) snprintf(test, sizeof test, "tg%lld", (long long)n_gen);
                    else snprintf(test, sizeof test, "tg%lld@d%lld", (long long)n_gen, (long long)depth[k]);
                    double extra;
                    if (kind == 0) { /* GFLOP/s: layer matrices + attention (QK^T and PV: 4 * hd * heads * ctx/2
                                      * per token) for every token, the classifier for the one row per batch
                                      * whose logits are computed */
                        const double att = 4.0 * info.n_embd * ((double)pp[k] / 2.0) * info.n_layer;
                        const double rows = (double)((pp[k] + n_batch - 1) / n_batch);
                        const double flops = ((double)(info.flops_per_token - info.flops_classifier) + att) * (double)pp[k] +
                                             (double)info.flops_classifier * rows;
                        extra = flops / (double)pp[k] * s.median / 1e9;
                    } else {
                        extra = s.median / (bw[ti] * 1e9 / (double)info.bytes_per_token);
                    }
                    if (json)
                        printf("{\"model\": \"%s\", \"type\": \"%s\", \"test\": \"%s\", \"threads\": %lld, "
                               "\"tok_s_min\": %.2f, \"tok_s_median\": %.2f, \"tok_s_max\": %.2f, \"%s\": %.3f, "
                               "\"bandwidth_gb_s\": %.2f, \"repeats\": %lld}\n",
                               name, info.type_name, test, (long long)thr[ti], s.min, s.median, s.max,
                               kind == 0 ? "gflop_s" : "efficiency", extra, bw[ti], (long long)reps);
                    else
                        printf("| %s | %s | %s | %lld | %.2f | %.2f | %.2f | %s %.3f |\n", name, info.type_name, test,
                               (long long)thr[ti], s.min, s.median, s.max, kind == 0 ? "GFLOP/s" : "eff", extra);
                    fflush(stdout);
                }
            }
        }
        if (json)
            printf("{\"model\": \"%s\", \"type\": \"%s\", \"test\": \"rss\", \"rss_mb\": %ld}\n", name,
                   info.type_name, rss_mb());
        else
            fprintf(stderr, "minnow bench: %s: load %.2f s, RSS %ld MB\n", name, t_load, rss_mb());
        for (int ti = 0; ti < n_thr; ti++) mn_context_free(ctx[ti]);
        mn_model_free(model);
    }
    free(tok);
    free(pos);
    free(samples);
    return rc;
}
