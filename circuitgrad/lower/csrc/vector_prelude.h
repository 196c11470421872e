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
#define CG_W CG_WIDTH
typedef double cg_v __attribute__((vector_size(8 * CG_W)));  /* CG_W lanes, one point each */
typedef long long cg_m __attribute__((vector_size(8 * CG_W)));  /* a comparison: all 1s or 0s */
typedef unsigned long long cg_u __attribute__((vector_size(8 * CG_W)));  /* a vector's bits */
typedef union { cg_v v; double d[CG_W]; unsigned long long u[CG_W]; } cg_lanes;  /* lanes */
/* cg_vany(m): some lane of m set; cg_vsqrt: IEEE sqrt in each lane; cg_vround(a, mode): roundpd's
   modes (0x9 floor, 0xA ceil, 0x4 rint, 0x8 nearest without the inexact flag). GCC's builtins,
   not <immintrin.h>, whose parsing alone takes 0.25 s of every compile. */
#if CG_W == 8 && defined(__clang__)
#include <immintrin.h>
#define cg_vany(m) _mm512_test_epi64_mask((__m512i)(m), (__m512i)(m))
#define cg_vsqrt(a) ((cg_v)_mm512_sqrt_pd((__m512d)(a)))
#define cg_vround(a, mode) ((cg_v)_mm512_roundscale_pd((__m512d)(a), (mode)))
#elif CG_W == 8
#define cg_vany(m) __builtin_ia32_ptestmq512((m), (m), (unsigned char)-1)
#define cg_vsqrt(a) __builtin_ia32_sqrtpd512_mask((a), (a), (unsigned char)-1, 4)
#define cg_vround(a, mode) __builtin_ia32_rndscalepd_mask((a), (mode), (a), (unsigned char)-1, 4)
#elif CG_W == 4
#define cg_vany(m) __builtin_ia32_movmskpd256((cg_v)(m))
#define cg_vsqrt(a) __builtin_ia32_sqrtpd256(a)
#define cg_vround(a, mode) __builtin_ia32_roundpd256((a), (mode))
#else
#define cg_vany(m) __builtin_ia32_movmskpd((cg_v)(m))
#define cg_vsqrt(a) __builtin_ia32_sqrtpd(a)
#if defined(__SSE4_1__)
#define cg_vround(a, mode) __builtin_ia32_roundpd((a), (mode))
#else  /* SSE2 alone: the rounding functions lane by lane */
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
#if CG_W == 8
#define CG_C(x) ((cg_v){(x), (x), (x), (x), (x), (x), (x), (x)})  /* a constant in every lane */
#elif CG_W == 4
#define CG_C(x) ((cg_v){(x), (x), (x), (x)})
#else
#define CG_C(x) ((cg_v){(x), (x)})
#endif
/* CG_FMA(a, b, c): a * b + c rounded once where the width's ISA has fused multiply-add
   (AVX-512F's vfmadd at 8 lanes; FMA3's at 4, whose flags carry -mfma: NEEDS asks for fma),
   else rounded twice (2 lanes: SSE4.1 has none). For the vector math's kernels only (vector_math.h:
   their polynomials, and steps of their range reductions, each where vector_math.h says why it
   keeps the kernel within its ulps: exp's x * 16/ln 2 + shift and its second part's product are
   rounded once, not exact; sin's r = t - n pio2_1 is exact either way); the circuit's own arithmetic
   stays unfused (-ffp-contract=off), so its values are to_numpy's. A point alone runs the
   same code in one lane, so a batch is its points bit for bit at each width. */
#if CG_W == 8 && defined(__clang__)
#define CG_FMA(a, b, c) ((cg_v)_mm512_fmadd_pd((__m512d)(a), (__m512d)(b), (__m512d)(c)))
#elif CG_W == 8
#define CG_FMA(a, b, c) __builtin_ia32_vfmaddpd512_mask((a), (b), (c), (unsigned char)-1, 4)
#elif CG_W == 4 && defined(__FMA__)
#define CG_FMA(a, b, c) __builtin_ia32_vfmaddpd256((a), (b), (c))
#elif CG_W == 4
/* (-mavx2 alone would quietly run other bits than circuitgrad's library of this source) */
#error "4 points per vector fuse the vector math's multiply-adds: compile with -mavx2 -mfma"
#else
#define CG_FMA(a, b, c) ((a) * (b) + (c))
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
#define CG_SCALAR_CODE() __builtin_ia32_vzeroupper()
#else
#define CG_SCALAR_CODE()
#endif
static inline cg_v cg_vabs(cg_v a) { return (cg_v)((cg_m)a & ~(cg_m)CG_C(-0.0)); }
/* x ** 3.0 (pow with the literal exponent 3): x*x*x with the rounding errors of both products
   carried along (Dekker's exact product over Veltkamp's split, no fused multiply-add, so every
   width and a point alone give the same bits), within 0.5 ulp and a hair of the true cube,
   where libmvec's pow took about 7% of a gradient's time (and glibc's scalar pow for its
   negative bases). Zero is itself (the sign kept, as pow's); lanes whose cube or its error
   terms would overflow or underflow (|x| outside [2^-300, 2^300]), inf and nan take libm's
   pow(x, 3.0), lane by lane. */
static __attribute__((noinline, cold)) cg_v cg_vcube_lanes(cg_v y, cg_v x, cg_m outside) {
    cg_lanes xs = {x}, ys = {y}, ms = {(cg_v)outside};  /* apart: no stack frame in cg_vcube */
    int l;
    CG_SCALAR_CODE();
    for (l = 0; l < CG_W; l++)
        if (ms.u[l]) ys.d[l] = pow(xs.d[l], 3.0);
    return ys.v;
}
static inline __attribute__((always_inline)) cg_v cg_vcube(cg_v x) {
    const cg_v split = CG_C(134217729.0);  /* 2^27 + 1 */
    cg_v ax = cg_vabs(x);
    cg_m outside = ~((ax >= 0x1p-300) & (ax <= 0x1p300)) & (x != 0.0);
    cg_v c = split * x, xh = c - (c - x), xl = x - xh;
    cg_v s = x * x;  /* x^2 = s + es exactly */
    cg_v es = ((xh * xh - s) + 2.0 * (xh * xl)) + xl * xl;
    cg_v d = split * s, sh = d - (d - s), sl = s - sh;
    cg_v p = s * x;  /* s x = p + ep exactly */
    cg_v ep = (((sh * xh - p) + sh * xl) + sl * xh) + sl * xl;
    cg_v y = cg_select(x == 0.0, x, p + (ep + es * x));
    return __builtin_expect(cg_vany(outside) != 0, 0) ? cg_vcube_lanes(y, x, outside) : y;
}
