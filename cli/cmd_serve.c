/*
 * cmd_serve.c: `minnow serve`, the OpenAI-compatible HTTP server (src/server/server.h).
 *
 * This file only parses flags and turns SIGINT/SIGTERM into a byte on a self-pipe: the server's
 * main thread polls the pipe's read end and then drains and exits 0. The write end lives in the
 * one mutable global the house rules allow for signal handling (a volatile sig_atomic_t), since
 * a signal handler has no other way to reach it. SIGPIPE is ignored so a write to a socket the
 * client closed is an EPIPE error, not process death (BAD_INPUTS 43).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "server/server.h"
#include "util.h"

/* The self-pipe's write end, for the signal handler only (-1 when not set). */
static volatile sig_atomic_t g_stop_wfd = -1;

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    int fd = g_stop_wfd;
    if (fd >= 0) {
        char b = 1;
        ssize_t r = write(fd, &b, 1); /* async-signal-safe; a full pipe already says "stop" */
        (void)r;
    }
    errno = saved;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: minnow serve -m MODEL [options]\n"
            "  -m, --model PATH       GGUF model to serve\n"
            "  --host ADDR            IPv4 address to bind (default 127.0.0.1)\n"
            "  --port N               TCP port (default 8080; 0 = any free port, printed on stderr)\n"
            "  -t, --threads N        compute threads (default: all cores)\n"
            "  -c, --ctx-size N       context tokens per sequence (default: the model's)\n"
            "  --parallel N           sequences evaluated together (default 4)\n"
            "  -b, --batch N          most tokens per forward pass (default 512)\n"
            "  --kv-memory MB         KV cache pool size (default: ctx-size x parallel)\n"
            "  --api-key KEY          require Authorization: Bearer KEY (also $MINNOW_API_KEY)\n"
            "  --max-queue N          sequences that may wait beyond --parallel before 503 (default 64)\n"
            "  --max-body BYTES       request body limit (default 8388608)\n"
            "  --timeout S            idle connection timeout in seconds (default 30)\n"
            "  --max-connections N    concurrent connections (default 512)\n"
            "  --drain-timeout S      on SIGTERM/SIGINT, time in-flight requests get (default 10)\n"
            "  --cors-origin ORIGIN   allow browser requests from ORIGIN ('*' = any)\n"
            "  --alias NAME           model id reported by the API (default: file name)\n"
            "  -q, --quiet            no log lines per request\n");
}

int cmd_serve(int argc, char **argv) {
    const char *C = "serve";
    srv_config cfg = srv_config_default();
    cfg.api_key = getenv("MINNOW_API_KEY");
    int64_t v;
    float fv;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NUM(lo, hi) (cli_parse_i64(C, a, next, (lo), (hi), &v) ? (i++, 1) : 0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!next) goto needs;
            cfg.model_path = argv[++i];
        } else if (!strcmp(a, "--host")) {
            if (!next) goto needs;
            cfg.host = argv[++i];
        } else if (!strcmp(a, "--port")) {
            if (!NUM(0, 65535)) return 2;
            cfg.port = (int)v;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!NUM(0, 1024)) return 2;
            cfg.n_threads = (int)v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (!NUM(0, 1 << 20)) return 2;
            cfg.n_ctx = (int32_t)v;
        } else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
            if (!NUM(1, 256)) return 2;
            cfg.n_parallel = (int32_t)v;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (!NUM(1, 1 << 16)) return 2;
            cfg.n_batch = (int32_t)v;
        } else if (!strcmp(a, "--kv-memory")) {
            if (!NUM(1, 1 << 20)) return 2;
            cfg.kv_memory_mb = (uint64_t)v;
        } else if (!strcmp(a, "--api-key")) {
            if (!next) goto needs;
            cfg.api_key = argv[++i];
        } else if (!strcmp(a, "--max-queue")) {
            if (!NUM(0, 100000)) return 2;
            cfg.max_queue = (int32_t)v;
        } else if (!strcmp(a, "--max-body")) {
            if (!NUM(1024, (int64_t)1 << 30)) return 2;
            cfg.body_bytes_max = (size_t)v;
        } else if (!strcmp(a, "--timeout")) {
            if (!NUM(1, 86400)) return 2;
            cfg.idle_timeout_s = (unsigned)v;
        } else if (!strcmp(a, "--max-connections")) {
            if (!NUM(1, 65536)) return 2;
            cfg.max_connections = (unsigned)v;
        } else if (!strcmp(a, "--drain-timeout")) {
            if (!cli_parse_f32(C, a, next, 0, 3600, &fv)) return 2;
            cfg.drain_timeout_s = fv;
            i++;
        } else if (!strcmp(a, "--cors-origin")) {
            if (!next) goto needs;
            cfg.cors_origin = argv[++i];
        } else if (!strcmp(a, "--alias")) {
            if (!next) goto needs;
            cfg.alias = argv[++i];
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            cfg.quiet = 1;
        } else {
            fprintf(stderr, "minnow serve: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    needs:
        fprintf(stderr, "minnow serve: %s needs a value\n", a);
        return 2;
#undef NUM
    }
    if (!cfg.model_path) {
        fprintf(stderr, "minnow serve: -m MODEL is required\n");
        usage(stderr);
        return 2;
    }
    if (cfg.api_key && !cfg.api_key[0]) cfg.api_key = NULL;

    int pfd[2];
    if (pipe(pfd) != 0) {
        perror("minnow serve: pipe");
        return 1;
    }
    fcntl(pfd[1], F_SETFL, O_NONBLOCK);
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    g_stop_wfd = pfd[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    cfg.stop_fd = pfd[0];
    int rc = srv_run(&cfg);

    g_stop_wfd = -1;
    close(pfd[0]);
    close(pfd[1]);
    return rc;
}
