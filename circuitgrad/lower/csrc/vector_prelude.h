/* Points per vector: 4 where the compiler targets AVX2 and the C library is glibc (its
   vector math, libmvec, comes with -lm), else 1 (plain C). Every call runs the same code, a
   one-point call in one lane, so a point of a batch is the point alone, bit for bit. */
#if defined(__AVX2__) && defined(__GLIBC__) && defined(__GNUC__) && !defined(CG_NO_VECTORS)
#define CG_W 4
typedef double cg_v __attribute__((vector_size(32)));  /* 4 lanes, one point each */
typedef long long cg_m __attribute__((vector_size(32)));  /* a comparison: lanes of all 1s or 0s */
typedef unsigned long long cg_u __attribute__((vector_size(32)));  /* a vector's bits */
#define CG_C(x) ((cg_v){(x), (x), (x), (x)})  /* a constant in every lane */
typedef double cg_lane __attribute__((may_alias));  /* a lane, read and written as a double */
#define LANE(k) ((cg_lane *)r)[(k) * LANES + l]  /* register k, lane l of the chunk */
#define CG_ALLOC(size) aligned_alloc(sizeof(cg_v), sizeof(cg_v) * (size))
static inline cg_v cg_select(cg_m m, cg_v a, cg_v b) {  /* a where m, else b */
    return (cg_v)((m & (cg_m)a) | (~m & (cg_m)b));
}
#define CG_ONE_IF(m) cg_select((m), CG_C(1.0), CG_C(0.0))
typedef union { cg_v v; double d[CG_W]; unsigned long long u[CG_W]; } cg_lanes;  /* lanes */
/* Before SSE code (libm's scalar functions, the caller of NAME_eval): clears the upper
   halves of the AVX registers, which SSE code otherwise waits on (here ~20x per call). */
#define CG_SCALAR_CODE() __builtin_ia32_vzeroupper()
static inline cg_v cg_vabs(cg_v a) { return (cg_v)((cg_m)a & ~(cg_m)CG_C(-0.0)); }
