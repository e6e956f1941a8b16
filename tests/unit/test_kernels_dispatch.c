/*
 * test_kernels_dispatch.c: CPU feature detection and the choice of kernel table.
 *   - mn_cpu_features_decode on synthetic registers: a feature counts only with OS support
 *     (XCR0), e.g. AVX-512 reported by cpuid but ZMM state off must read as absent.
 *   - mn_cpu_features_get agrees with the kernel's view in /proc/cpuinfo (Linux hides flags whose
 *     register state it does not enable), when that file is readable.
 *   - mn_kernels_select: no request -> best; a supported request -> that table; an unknown or
 *     unsupported one -> best plus a warning.
 *   - MINNOW_ISA really steers mn_kernels_get(): checked in child processes (the choice is made
 *     once per process), including that a bad value warns exactly once on stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cpu.h"
#include "kernels/kernels.h"

/* ---------------------------------------------------------------- cpu ------------------------ */

#define B(n) (1u << (n))

static void test_decode(void **state) {
    (void)state;
    mn_cpu_features f;
    memset(&f, 0, sizeof f);
    const unsigned l1 = B(12) | B(27) | B(28) | B(29);                      /* FMA OSXSAVE AVX F16C */
    const unsigned l7b = B(5) | B(8) | B(16) | B(17) | B(30) | B(31);       /* AVX2 BMI2 512F/DQ/BW/VL */
    const unsigned l7c = B(11);                                             /* AVX512_VNNI */
    const unsigned l71a = B(4) | B(5);                                      /* AVX-VNNI, AVX512_BF16 */

    mn_cpu_features_decode(l1, l7b, l7c, l71a, 0xe7, &f); /* OS saves x87/SSE/AVX/opmask/ZMM */
    assert_true(f.avx && f.avx2 && f.fma && f.f16c && f.bmi2 && f.avx_vnni);
    assert_true(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.avx512bf16);

    mn_cpu_features_decode(l1, l7b, l7c, l71a, 0x07, &f); /* no ZMM state: AVX-512 unusable */
    assert_true(f.avx2 && f.fma && f.avx_vnni);
    assert_false(f.avx512f || f.avx512bw || f.avx512vl || f.avx512dq || f.avx512vnni || f.avx512bf16);

    mn_cpu_features_decode(l1, l7b, l7c, l71a, 0x03, &f); /* no YMM state: no AVX at all */
    assert_false(f.avx || f.avx2 || f.fma || f.f16c || f.avx_vnni || f.avx512f);
    assert_true(f.bmi2); /* a GPR extension needs no OS state */

    mn_cpu_features_decode(l1 & ~B(27), l7b, l7c, l71a, 0xe7, &f); /* OSXSAVE clear */
    assert_false(f.avx || f.avx2 || f.avx512f);

    mn_cpu_features_decode(l1, B(5) | B(16), 0, 0, 0xe7, &f); /* AVX512F only */
    assert_true(f.avx2 && f.avx512f);
    assert_false(f.avx512bw || f.avx512vl || f.avx512dq || f.avx512vnni || f.avx512bf16 || f.bmi2);

    mn_cpu_features_decode(l1, 0, B(11), B(4) | B(5), 0xe7, &f); /* VNNI/BF16 bits without their base ISA */
    assert_false(f.avx2 || f.avx_vnni || f.avx512vnni || f.avx512bf16);
}

/* Is the word `flag` in the "flags" line of /proc/cpuinfo? -1 when unreadable. */
static int cpuinfo_has(const char *flag) {
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) return -1;
    char line[8192];
    int found = -1;
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        found = 0;
        for (char *tok = strtok(strchr(line, ':') + 1, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
            if (strcmp(tok, flag) == 0) found = 1;
        }
        break;
    }
    fclose(fp);
    return found;
}

static void test_detect_matches_cpuinfo(void **state) {
    (void)state;
    const mn_cpu_features *f = mn_cpu_features_get();
    assert_non_null(f);
    assert_ptr_equal(f, mn_cpu_features_get());
    if (cpuinfo_has("fpu") < 0) {
        printf("# skipped: /proc/cpuinfo not readable\n");
        skip();
    }
    printf("# cpu %s: avx2 %d fma %d f16c %d avx512f %d bw %d vl %d dq %d vnni %d bf16 %d avx_vnni %d\n", f->vendor,
           f->avx2, f->fma, f->f16c, f->avx512f, f->avx512bw, f->avx512vl, f->avx512dq, f->avx512vnni,
           f->avx512bf16, f->avx_vnni);
    const struct {
        const char *flag;
        bool have;
    } pairs[] = {
        {"avx2", f->avx2},         {"fma", f->fma},           {"f16c", f->f16c},
        {"bmi2", f->bmi2},         {"avx512f", f->avx512f},   {"avx512bw", f->avx512bw},
        {"avx512vl", f->avx512vl}, {"avx512dq", f->avx512dq}, {"avx512_vnni", f->avx512vnni},
        {"avx512_bf16", f->avx512bf16}, {"avx_vnni", f->avx_vnni},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (cpuinfo_has(pairs[i].flag) != (int)pairs[i].have) {
            fail_msg("%s: cpuinfo says %d, detection says %d", pairs[i].flag, cpuinfo_has(pairs[i].flag),
                     (int)pairs[i].have);
        }
    }
}

/* ---------------------------------------------------------------- selection ------------------ */

static const char *best_isa(void) {
    if (mn_kernels_for_isa("avx512")) return "avx512";
    if (mn_kernels_for_isa("avx2")) return "avx2";
    return "scalar";
}

static void test_for_isa(void **state) {
    (void)state;
    const mn_cpu_features *f = mn_cpu_features_get();
    assert_non_null(mn_kernels_for_isa("scalar"));
    assert_null(mn_kernels_for_isa("sse9"));
    assert_null(mn_kernels_for_isa(NULL));
    assert_null(mn_kernels_for_isa("AVX2")); /* names are exact */
    const int want2 = f->avx2 && f->fma && f->f16c && f->bmi2;
    assert_int_equal(mn_kernels_for_isa("avx2") != NULL, want2);
    const int want512 = want2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512vnni &&
                        f->avx512bf16;
    assert_int_equal(mn_kernels_for_isa("avx512") != NULL, want512);
}

static void test_select(void **state) {
    (void)state;
    char warn[160];
    const char *best = best_isa();
    assert_string_equal(mn_kernels_select(NULL, warn, sizeof warn)->isa, best);
    assert_string_equal(warn, "");
    assert_string_equal(mn_kernels_select("", warn, sizeof warn)->isa, best);
    assert_string_equal(warn, "");
    assert_string_equal(mn_kernels_select("scalar", warn, sizeof warn)->isa, "scalar");
    assert_string_equal(warn, "");
    assert_string_equal(mn_kernels_select("bogus", warn, sizeof warn)->isa, best);
    assert_non_null(strstr(warn, "bogus"));
    assert_string_equal(mn_kernels_select("bogus", NULL, 0)->isa, best); /* no warn buffer: fine */
    const char *isas[] = {"avx2", "avx512"};
    for (int i = 0; i < 2; i++) {
        const mn_kernels *t = mn_kernels_select(isas[i], warn, sizeof warn);
        if (mn_kernels_for_isa(isas[i])) {
            assert_string_equal(t->isa, isas[i]);
            assert_string_equal(warn, "");
        } else {
            assert_string_equal(t->isa, best);
            assert_non_null(strstr(warn, "not supported"));
        }
    }
    /* a long request is cut in the message, never overflows */
    char longname[600];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char small[16];
    assert_string_equal(mn_kernels_select(longname, small, sizeof small)->isa, best);
    assert_int_equal(strlen(small), sizeof small - 1);
}

/* Runs mn_kernels_get() twice in a child with MINNOW_ISA=value (NULL: unset). Returns the isa
 * chosen in *isa and what the child wrote to stderr in err. */
static void run_child(const char *value, char *isa, size_t isa_size, char *err, size_t err_size) {
    int out_pipe[2], err_pipe[2];
    assert_int_equal(pipe(out_pipe), 0);
    assert_int_equal(pipe(err_pipe), 0);
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        dup2(err_pipe[1], 2);
        if (value) setenv("MINNOW_ISA", value, 1);
        else unsetenv("MINNOW_ISA");
        const mn_kernels *a = mn_kernels_get(), *b = mn_kernels_get();
        const char *name = a == b ? a->isa : "changed";
        if (write(out_pipe[1], name, strlen(name)) < 0) _exit(2);
        _exit(0);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    ssize_t n = read(out_pipe[0], isa, isa_size - 1);
    isa[n > 0 ? n : 0] = '\0';
    size_t total = 0;
    while (total < err_size - 1) {
        n = read(err_pipe[0], err + total, err_size - 1 - total);
        if (n <= 0) break;
        total += (size_t)n;
    }
    err[total] = '\0';
    close(out_pipe[0]);
    close(err_pipe[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_env_override(void **state) {
    (void)state;
    char isa[32], err[1024];
#if defined(MN_FORCE_SCALAR)
    /* forced-scalar builds ignore MINNOW_ISA entirely */
    const char *values[] = {"avx2", "avx512", "neon", "scalar"};
    for (int i = 0; i < 4; i++) {
        run_child(values[i], isa, sizeof isa, err, sizeof err);
        assert_string_equal(isa, "scalar");
        assert_string_equal(err, "");
    }
    return;
#endif
    const char *best = best_isa();

    run_child(NULL, isa, sizeof isa, err, sizeof err);
    assert_string_equal(isa, best);
    assert_string_equal(err, "");

    run_child("scalar", isa, sizeof isa, err, sizeof err);
    assert_string_equal(isa, "scalar");
    assert_string_equal(err, "");

    const char *isas[] = {"avx2", "avx512"};
    for (int i = 0; i < 2; i++) {
        run_child(isas[i], isa, sizeof isa, err, sizeof err);
        if (mn_kernels_for_isa(isas[i])) {
            assert_string_equal(isa, isas[i]);
            assert_string_equal(err, "");
        } else {
            printf("# %s not on this CPU: checking the fallback warning instead\n", isas[i]);
            assert_string_equal(isa, best);
            assert_int_equal(count_lines(err), 1);
            assert_non_null(strstr(err, isas[i]));
        }
    }

    run_child("neon", isa, sizeof isa, err, sizeof err);
    assert_string_equal(isa, best);
    assert_int_equal(count_lines(err), 1); /* one warning although mn_kernels_get ran twice */
    assert_non_null(strstr(err, "MINNOW_ISA=neon"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_detect_matches_cpuinfo),
        cmocka_unit_test(test_for_isa),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_env_override),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
