/*
 * cpu.h: x86 CPU feature detection, done once per process.
 *
 * A feature counts as present only when the CPU reports it (cpuid) AND the operating system saves
 * the register state it needs (xgetbv XCR0: XMM+YMM for AVX-family features, plus opmask and the
 * upper ZMM halves for AVX-512). A CPU with AVX-512 under an OS that does not enable ZMM state
 * must not run AVX-512 code, so the OS check is part of every flag here.
 *
 * The struct is filled once under pthread_once and is read-only afterwards, so any thread may call
 * mn_cpu_features() at any time. On non-x86 builds every flag is false.
 */
#ifndef MN_CORE_CPU_H
#define MN_CORE_CPU_H

#include <stdbool.h>

typedef struct mn_cpu_features {
    char vendor[13]; /* "GenuineIntel", "AuthenticAMD", ... ("" when unknown) */
    bool avx;        /* AVX with OS YMM support */
    bool avx2;
    bool fma;
    bool f16c;
    bool bmi2;
    bool avx512f; /* all avx512* flags also require OS ZMM + opmask support */
    bool avx512bw;
    bool avx512vl;
    bool avx512dq;
    bool avx512vnni;
    bool avx512bf16;
    bool avx_vnni; /* VEX-encoded vpdpbusd (Alder Lake, Zen 5) */
} mn_cpu_features;

/* The features of the CPU this process runs on. Borrowed, never NULL, valid for the process. */
const mn_cpu_features *mn_cpu_features_get(void);

/* Pure decoding step, exposed for tests: fills *out from raw register values.
 * leaf1_ecx: cpuid(1).ecx. leaf7_ebx/ecx: cpuid(7,0).ebx/ecx. leaf7_1_eax: cpuid(7,1).eax
 * (0 when max leaf < 7). xcr0: xgetbv(0) (0 when the OS has not set OSXSAVE). */
void mn_cpu_features_decode(unsigned leaf1_ecx, unsigned leaf7_ebx, unsigned leaf7_ecx,
                            unsigned leaf7_1_eax, unsigned long long xcr0, mn_cpu_features *out);

#endif
