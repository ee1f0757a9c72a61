/* Make this x86_64 CPU look like an older CPU class to everything in one process: an LD_PRELOAD
 * library that hides CPUID feature bits, so tract's, ONNX Runtime's (MLAS) and our own kernel
 * dispatch all choose the kernels they would choose on that class, on the same silicon.
 *
 *   PANDERM_CPU_CLASS=avx2         AVX2 + FMA only: no AVX-512 (any), no AVX-VNNI, no AMX
 *                                  (Haswell..Comet Lake, Zen 1-3: most field laptops before 2021)
 *   PANDERM_CPU_CLASS=avx512-vnni  AVX-512 with VNNI, no AMX and no AVX-VNNI (Cascade/Ice Lake)
 *   LD_PRELOAD=.../libcpuid_mask.so <command>
 *
 * How: Linux's CPUID faulting (arch_prctl(ARCH_SET_CPUID, 0); /proc/cpuinfo flag `cpuid_fault`,
 * also under KVM) turns every CPUID instruction of the process into a SIGSEGV; the handler runs
 * the real CPUID with faulting briefly off, clears the class's bits and steps over the
 * instruction. The setting is per thread and inherited by threads created later (worker pools).
 * CPUID executed before this library's constructor (the dynamic loader's own probe for glibc's
 * string functions) is not masked: that only affects memcpy/strlen variants, not any GEMM.
 * The OS still enables the AVX-512/AMX register state (XGETBV); every dispatcher we rely on also
 * requires the CPUID bit, so hiding the bit is enough.
 *
 * Not for production: a benchmarking aid (scripts/bench-vs-ort.sh --cpu-class). Refuses to run
 * (exit 3) when the class is unknown or the kernel or CPU cannot fault CPUID, rather than
 * measuring the wrong class.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012
#endif

enum cpu_class { CLASS_AVX2, CLASS_AVX512_VNNI };

static enum cpu_class class_;
static struct sigaction previous;

static long set_cpuid_enabled(int enabled) {
    return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled);
}

#define BIT(n) (1u << (n))

static void mask(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
    if (leaf == 7 && sub == 0) {
        /* EDX: AMX-BF16 (22), AVX512-FP16 (23), AMX-TILE (24), AMX-INT8 (25): no AMX class. */
        unsigned edx_amx = BIT(22) | BIT(23) | BIT(24) | BIT(25);
        *d &= ~edx_amx;
        if (class_ == CLASS_AVX2) {
            /* EBX: AVX512 F (16), DQ (17), IFMA (21), PF (26), ER (27), CD (28), BW (30), VL (31). */
            *b &= ~(BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31));
            /* ECX: VBMI (1), VBMI2 (6), VNNI (11), BITALG (12), VPOPCNTDQ (14). */
            *c &= ~(BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14));
            /* EDX: 4VNNIW (2), 4FMAPS (3), VP2INTERSECT (8). */
            *d &= ~(BIT(2) | BIT(3) | BIT(8));
        }
    } else if (leaf == 7 && sub == 1) {
        /* EAX: AVX-VNNI (4), AVX512-BF16 (5), AVX-IFMA (23); EDX: AVX-VNNI-INT8 (4),
         * AVX-NE-CONVERT (5), AVX-VNNI-INT16 (10). Neither class has them. */
        *a &= ~(BIT(4) | BIT(5) | BIT(23));
        *d &= ~(BIT(4) | BIT(5) | BIT(10));
    }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = (ucontext_t *)context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
        unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
        set_cpuid_enabled(1);
        __cpuid_count(leaf, sub, a, b, c, d);
        set_cpuid_enabled(0);
        mask(leaf, sub, &a, &b, &c, &d);
        r[REG_RAX] = a;
        r[REG_RBX] = b;
        r[REG_RCX] = c;
        r[REG_RDX] = d;
        r[REG_RIP] += 2;
        return;
    }
    /* A real fault: hand it to whoever had SIGSEGV before us, or die of it. */
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        signal(SIGSEGV, SIG_DFL); /* returning re-executes the faulting instruction */
    }
}

__attribute__((constructor)) static void cpuid_mask_init(void) {
    const char *name = getenv("PANDERM_CPU_CLASS");
    if (name == NULL || name[0] == '\0' || strcmp(name, "native") == 0) return;
    if (strcmp(name, "avx2") == 0) {
        class_ = CLASS_AVX2;
    } else if (strcmp(name, "avx512-vnni") == 0) {
        class_ = CLASS_AVX512_VNNI;
    } else {
        fprintf(stderr, "cpuid_mask: PANDERM_CPU_CLASS=%s: expected avx2, avx512-vnni or native\n", name);
        _exit(3);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &previous) != 0 || set_cpuid_enabled(0) != 0) {
        perror("cpuid_mask: CPUID faulting (arch_prctl ARCH_SET_CPUID) unavailable");
        _exit(3);
    }
}
