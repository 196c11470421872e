/* Points per vector: CG_WIDTH (the source defines it: 8 for AVX-512, 4 for AVX2, 2 for SSE,
   chosen by to_c for the machine that compiles it) where the compiler targets that ISA on
   x86-64 and the C library is glibc (its vector math, libmvec, comes with -lm), else 1 (plain
   C). Every call runs the same code, a one-point call in one lane, so a point of a batch is
   the point alone, bit for bit, at any width. */
#ifndef CG_WIDTH
#define CG_WIDTH 4
#endif
#if defined(__GLIBC__) && defined(__GNUC__) && defined(__x86_64__) && !defined(CG_NO_VECTORS) \
    && ((CG_WIDTH == 8 && defined(__AVX512F__)) || (CG_WIDTH == 4 && defined(__AVX2__)) \
        || CG_WIDTH == 2)
#include <immintrin.h>
#define CG_W CG_WIDTH
typedef double cg_v __attribute__((vector_size(8 * CG_W)));  /* CG_W lanes, one point each */
typedef long long cg_m __attribute__((vector_size(8 * CG_W)));  /* a comparison: all 1s or 0s */
typedef unsigned long long cg_u __attribute__((vector_size(8 * CG_W)));  /* a vector's bits */
typedef union { cg_v v; double d[CG_W]; unsigned long long u[CG_W]; } cg_lanes;  /* lanes */
#if CG_W == 8
#define CG_C(x) ((cg_v){(x), (x), (x), (x), (x), (x), (x), (x)})  /* a constant in every lane */
#define cg_vany(m) _mm512_test_epi64_mask((__m512i)(m), (__m512i)(m))  /* some lane set */
#define cg_vsqrt(a) ((cg_v)_mm512_sqrt_pd((__m512d)(a)))  /* IEEE sqrt, lane by lane */
#define cg_vround(a, mode) ((cg_v)_mm512_roundscale_pd((__m512d)(a), (mode)))  /* roundpd's */
#elif CG_W == 4
#define CG_C(x) ((cg_v){(x), (x), (x), (x)})
#define cg_vany(m) _mm256_movemask_pd((__m256d)(m))
#define cg_vsqrt(a) ((cg_v)_mm256_sqrt_pd((__m256d)(a)))
#define cg_vround(a, mode) ((cg_v)_mm256_round_pd((__m256d)(a), (mode)))
#else
#define CG_C(x) ((cg_v){(x), (x)})
#define cg_vany(m) _mm_movemask_pd((__m128d)(m))
#define cg_vsqrt(a) ((cg_v)_mm_sqrt_pd((__m128d)(a)))
#if defined(__SSE4_1__)
#define cg_vround(a, mode) ((cg_v)_mm_round_pd((__m128d)(a), (mode)))
#else  /* SSE2 alone: the rounding functions lane by lane (0x9 floor, 0xA ceil, 0x4 rint,
          0x8 nearest without the inexact flag) */
static inline cg_v cg_vround(cg_v a, int mode) {
    cg_lanes x = {a};
    int l;
    for (l = 0; l < CG_W; l++)
        x.d[l] = mode == 0x9 ? floor(x.d[l]) : mode == 0xA ? ceil(x.d[l])
                 : mode == 0x4 ? rint(x.d[l]) : nearbyint(x.d[l]);
    return x.v;
}
#endif
#endif
typedef double cg_lane __attribute__((may_alias));  /* a lane, read and written as a double */
#define LANE(k) ((cg_lane *)r)[(k) * LANES + l]  /* register k, lane l of the chunk */
#define CG_ALLOC(size) aligned_alloc(sizeof(cg_v), sizeof(cg_v) * (size))
static inline cg_v cg_select(cg_m m, cg_v a, cg_v b) {  /* a where m, else b */
    return (cg_v)((m & (cg_m)a) | (~m & (cg_m)b));
}
#define CG_ONE_IF(m) cg_select((m), CG_C(1.0), CG_C(0.0))
/* Before SSE code (libm's scalar functions, the caller of NAME_eval): clears the upper
   halves of the AVX registers, which SSE code otherwise waits on (here ~20x per call). */
#if CG_W > 2
#define CG_SCALAR_CODE() _mm256_zeroupper()
#else
#define CG_SCALAR_CODE()
#endif
static inline cg_v cg_vabs(cg_v a) { return (cg_v)((cg_m)a & ~(cg_m)CG_C(-0.0)); }
