/*
 * cpu.c: fills mn_cpu_features once from cpuid and xgetbv.
 *
 * Bits used (Intel SDM vol. 2A, CPUID; AMD APM vol. 3 agrees):
 *   cpuid(1).ecx:    12 FMA, 27 OSXSAVE, 28 AVX, 29 F16C
 *   cpuid(7,0).ebx:  5 AVX2, 8 BMI2, 16 AVX512F, 17 AVX512DQ, 30 AVX512BW, 31 AVX512VL
 *   cpuid(7,0).ecx:  11 AVX512_VNNI
 *   cpuid(7,1).eax:  4 AVX-VNNI, 5 AVX512_BF16
 *   XCR0:            bit 1 SSE, 2 AVX (YMM upper), 5 opmask, 6 ZMM_Hi256, 7 Hi16_ZMM
 * xgetbv may only be executed when OSXSAVE is set (otherwise it faults), hence the order below.
 * The raw-register decoding is a separate pure function so tests can feed it synthetic values
 * (e.g. AVX-512 reported by cpuid but ZMM state disabled by the OS).
 */
#include "core/cpu.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MN_CPU_X86 1
#else
#define MN_CPU_X86 0
#endif

#define BIT(r, b) ((((r) >> (b)) & 1u) != 0)

void mn_cpu_features_decode(unsigned leaf1_ecx, unsigned leaf7_ebx, unsigned leaf7_ecx,
                            unsigned leaf7_1_eax, unsigned long long xcr0, mn_cpu_features *out) {
    /* keep the vendor string, reset every flag */
    char vendor[sizeof out->vendor];
    memcpy(vendor, out->vendor, sizeof vendor);
    memset(out, 0, sizeof *out);
    memcpy(out->vendor, vendor, sizeof vendor);

    const bool os_ymm = BIT(leaf1_ecx, 27) && (xcr0 & 0x6) == 0x6;
    const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;

    out->avx = os_ymm && BIT(leaf1_ecx, 28);
    out->fma = out->avx && BIT(leaf1_ecx, 12);
    out->f16c = out->avx && BIT(leaf1_ecx, 29);
    out->avx2 = out->avx && BIT(leaf7_ebx, 5);
    out->bmi2 = BIT(leaf7_ebx, 8); /* scalar GPR instructions: no OS state needed */
    out->avx_vnni = out->avx2 && BIT(leaf7_1_eax, 4);

    out->avx512f = os_zmm && BIT(leaf7_ebx, 16);
    out->avx512dq = out->avx512f && BIT(leaf7_ebx, 17);
    out->avx512bw = out->avx512f && BIT(leaf7_ebx, 30);
    out->avx512vl = out->avx512f && BIT(leaf7_ebx, 31);
    out->avx512vnni = out->avx512f && BIT(leaf7_ecx, 11);
    out->avx512bf16 = out->avx512f && BIT(leaf7_1_eax, 5);
}

#if MN_CPU_X86
static unsigned long long read_xcr0(void) {
    unsigned lo, hi;
    /* xgetbv with ecx = 0, spelled as bytes so this file needs no -mxsave */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static mn_cpu_features g_features; /* written once, under g_once, then read-only */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect(void) {
    mn_cpu_features f;
    memset(&f, 0, sizeof f);
#if MN_CPU_X86
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) {
        g_features = f;
        return;
    }
    const unsigned max_leaf = eax;
    memcpy(f.vendor + 0, &ebx, 4);
    memcpy(f.vendor + 4, &edx, 4);
    memcpy(f.vendor + 8, &ecx, 4);
    f.vendor[12] = '\0';

    unsigned l1_ecx = 0, l7_ebx = 0, l7_ecx = 0, l71_eax = 0;
    unsigned long long xcr0 = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) l1_ecx = ecx;
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        l7_ebx = ebx;
        l7_ecx = ecx;
        const unsigned max_sub = eax;
        if (max_sub >= 1) {
            __cpuid_count(7, 1, eax, ebx, ecx, edx);
            l71_eax = eax;
        }
    }
    if (BIT(l1_ecx, 27)) xcr0 = read_xcr0();
    mn_cpu_features_decode(l1_ecx, l7_ebx, l7_ecx, l71_eax, xcr0, &f);
#endif
    g_features = f;
}

const mn_cpu_features *mn_cpu_features_get(void) {
    pthread_once(&g_once, detect);
    return &g_features;
}
