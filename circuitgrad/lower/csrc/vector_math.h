/* Vector exp, sin and cos: glibc's exp and fdlibm's sin and cos (FreeBSD msun: e_rem_pio2.c,
   k_sin.c, k_cos.c) lane by lane in vector operations, their polynomials by Estrin's scheme
   with fused multiply-add where the width has it (CG_FMA: 8 and 4 lanes; at 2 each rounded
   twice), the range reductions' exact products as fdlibm's. Lanes out of their range (and
   inf, nan) run libm's scalar function instead, so special values and the extremes are
   libm's. Fused (and the cosine's kernel FreeBSD's of 2008, without the |x| > 0.3 branches),
   exp takes 0.78-0.86x the time of the unfused code and sin with cos 0.75-0.8x at 8 lanes
   (AMD EPYC, Zen 4; docs/compiled.md), still within 1 ulp of to_numpy
   (scripts/libmvec_ulps.py) and of the exact value (mpmath on their edges: exp 0.53, sin
   0.68, cos 0.73 ulp). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("O2")  /* these few functions at -O2, the circuit's at the -O asked */
#endif
#define CG_SEL(m, a, b) ((cg_v)(((cg_m)(m) & (cg_m)(a)) | (~(cg_m)(m) & (cg_m)(b))))
#define CG_ABS(a) ((cg_v)((cg_m)(a) & ~(cg_m)CG_C(-0.0)))
static inline cg_v cg_vrint(cg_v x) { return cg_vround(x, 0x8); }  /* nearest, even at ties */
/* the lanes out of range through libm (rare): a function of its own, so that the kernels
   that call it keep no stack frame for its unions on their common path */
static __attribute__((noinline, cold)) cg_v cg_vscalar_lanes(cg_v y, cg_v x, cg_m outside,
                                                              double (*f)(double)) {
    cg_lanes xs = {x}, ys = {y}, ms = {(cg_v)outside};
    int l;
    CG_SCALAR_CODE();
    for (l = 0; l < CG_W; l++)
        if (ms.u[l]) ys.d[l] = f(xs.d[l]);
    return ys.v;
}
static inline cg_v cg_vscalar(cg_v y, cg_v x, cg_m outside, double (*f)(double)) {
    return __builtin_expect(cg_vany(outside) != 0, 0) ? cg_vscalar_lanes(y, x, outside, f) : y;
}
/* exp as glibc's scalar exp computes it (ARM's optimized routines), with a table of 16 rows
   instead of its 128: 2^(k/16) from the table (tails, then the bits of 2^(k/16) less k << 48:
   glibc's rows 0, 8, ... 120), times a degree-7 polynomial of the rest (|r| <= ln 2 / 32:
   Taylor's, truncated below 0.02 ulp): 1 ulp from to_numpy (scripts/libmvec_ulps.py), within
   1 ulp of glibc's exp, the same bits at 8 and 4 lanes (fused) and within 1 ulp at 2. 16
   rows fit in two AVX-512 registers each, so at 8 lanes a row is one permute (vpermt2pd) where
   128 rows were 8 loads through memory whose stores stall the vector loads that follow: exp timed
   on AMD EPYC (Zen 4), ns a point at 8 lanes, 0.50 against 1.06 with 128 rows (4 lanes: 1.27,
   1.28; the hardware gather, vpgatherqq, was slower than the loop at 4 and 8 lanes). */
static const unsigned long long cg_exp_table[32] __attribute__((aligned(64))) = {
    0x0000000000000000, 0x3c979aa65d837b6d, 0xbc801b15eaa59348, 0x3c968efde3a8a894,  /* tails */
    0x3c834d754db0abb6, 0x3c859f48a72a4c6d, 0x3c7690cebb7aafb0, 0x3c9063e1e21c5409,
    0xbc93b3efbf5e2228, 0xbc7b32dcb94da51d, 0x3c8db72fc1f0eab4, 0x3c71affc2b91ce27,
    0x3c8c1a7792cb3387, 0x3c736eae30af0cb3, 0x3c74a385a63d07a7, 0xbc8ff7128fd391f0,
    0x3ff0000000000000, 0x3fefb5586cf9890f, 0x3fef72b83c7d517b, 0x3fef387a6e756238,  /* scales */
    0x3fef06fe0a31b715, 0x3feedea64c123422, 0x3feebfdad5362a27, 0x3feeab07dd485429,
    0x3feea09e667f3bcd, 0x3feea11473eb0187, 0x3feeace5422aa0db, 0x3feec49182a3f090,
    0x3feee89f995ad3ad, 0x3fef199bdd85529c, 0x3fef5818dcfba487, 0x3fefa4afa2a490da,
};
/* The table's rows of k: at 8 lanes two permutes of two registers each; at 4 one loop of loads
   through unions; at 2 a vector built from the lanes' loads, where the loop's stores stall the
   vector loads that follow (2.01 ns a point against 4.06). */
#if CG_W == 8
#define CG_EXP_ROWS(k, tail, scale) do { \
        const cg_v *t_ = (const cg_v *)cg_exp_table; \
        cg_m i_ = (cg_m)((k) & 15); \
        tail = __builtin_ia32_vpermt2varpd512_mask(i_, t_[0], t_[1], (unsigned char)-1); \
        scale = (cg_v)((cg_u)__builtin_ia32_vpermt2varpd512_mask(i_, t_[2], t_[3], \
                                                                 (unsigned char)-1) + ((k) << 48)); \
    } while (0)
#elif CG_W == 2
#define CG_EXP_ROWS(k, tail, scale) do { \
        cg_u i_ = (k) & 15; \
        tail = (cg_v)(cg_u){cg_exp_table[i_[0]], cg_exp_table[i_[1]]}; \
        scale = (cg_v)((cg_u){cg_exp_table[16 + i_[0]], cg_exp_table[16 + i_[1]]} + ((k) << 48)); \
    } while (0)
#else
#define CG_EXP_ROWS(k, tail, scale) do { \
        cg_lanes k_ = {(cg_v)(k)}, t_, s_; \
        int l_; \
        for (l_ = 0; l_ < CG_W; l_++) { \
            unsigned long long i_ = k_.u[l_] % 16; \
            t_.u[l_] = cg_exp_table[i_]; \
            s_.u[l_] = cg_exp_table[16 + i_] + (k_.u[l_] << 48); \
        } \
        tail = t_.v; \
        scale = s_.v; \
    } while (0)
#endif
static inline cg_v cg_vexp(cg_v x) {  /* |x| <= 708: a normal result */
    const cg_v shift = CG_C(0x1.8p52);  /* k + shift has k's bits */
    cg_v kd = CG_FMA(x, CG_C(0x1.71547652b82fep4), shift);  /* x * 16 / ln 2, rounded */
    cg_u k = (cg_u)kd;  /* k's low bits: its row of the table */
    cg_v tail, scale;
    kd = kd - shift;
    /* ln 2 / 16 in two parts, the first with 34 bits: kd times it exact (|kd| < 2^15), so
       fusing its subtraction changes nothing; the second's product is then rounded once */
    cg_v r = CG_FMA(kd, CG_C(-0x1.cf79abc9e3b3ap-44), CG_FMA(kd, CG_C(-0x1.62e42fefa0000p-5), x));
    cg_v r2 = r * r, r4 = r2 * r2;
    CG_EXP_ROWS(k, tail, scale);
    /* tail + r + r2 (1/2 + r/6) + r4 ((1/24 + r/120) + r2 (1/720 + r/5040)), in that order,
       its pairs side by side (Estrin's scheme: a chain of 4 fused steps after r2, not 7) */
    cg_v p01 = CG_FMA(r, CG_C(1.0 / 6.0), CG_C(0.5));
    cg_v p23 = CG_FMA(r, CG_C(1.0 / 120.0), CG_C(1.0 / 24.0));
    cg_v p45 = CG_FMA(r, CG_C(1.0 / 5040.0), CG_C(1.0 / 720.0));
    cg_v tmp = CG_FMA(r4, CG_FMA(r2, p45, p23), CG_FMA(r2, p01, tail + r));
    return cg_vscalar(CG_FMA(scale, tmp, scale), x, ~(CG_ABS(x) <= 708.0), exp);
}
/* |x| = n pi/2 + y0 + y1 by fdlibm's medium reduction (|x| < 2^19 pi/2): a first round good
   to 85 bits, and a second (118 bits) and third (151) only where the first cancels more than
   16 bits (fdlibm's test on the exponents; then 49 after the second): the further rounds run
   for a vector only where one of its lanes needs them (rare: |x| within 2^-16 of a multiple of
   pi/2), and each lane takes them only where it needs them, so a lane's value is its own. */
static inline cg_m cg_vlost(cg_u j, cg_v y) {  /* more than the bits lost? (exponents) */
    return (cg_m)j - (cg_m)(((cg_u)y >> 52) & 0x7ff);
}
static inline cg_v cg_vrem_pio2(cg_v t, cg_v *y0, cg_v *y1) {
    cg_v n = cg_vrint(t * 6.36619772367581382433e-01);
    /* n times pio2_1 (33 bits) is exact (n < 2^19): fused, the same r, a step sooner */
    cg_v r = CG_FMA(-n, CG_C(1.57079632673412561417e+00), t), w = n * 6.07710050650619224932e-11;
    cg_v y = r - w;
    cg_u j = (cg_u)t >> 52;  /* t >= 0: its exponent */
    cg_m second = cg_vlost(j, y) > 16;
    if (cg_vany(second)) {
        cg_v u = r, r2, w2 = n * 6.07710050630396597660e-11, y2;
        cg_m third;
        r2 = u - w2;
        w2 = n * 2.02226624879595063154e-21 - ((u - r2) - w2);
        y2 = r2 - w2;
        third = second & (cg_vlost(j, y2) > 49);
        if (cg_vany(third)) {
            cg_v r3, w3 = n * 2.02226624871116645580e-21;
            u = r2;
            r3 = u - w3;
            w3 = n * 8.47842766036889956997e-32 - ((u - r3) - w3);
            r2 = CG_SEL(third, r3, r2);
            w2 = CG_SEL(third, w3, w2);
            y2 = r2 - w2;
        }
        r = CG_SEL(second, r2, r);
        w = CG_SEL(second, w2, w);
        y = CG_SEL(second, y2, y);
    }
    *y0 = y;
    *y1 = (r - y) - w;
    return n;
}
static inline cg_v cg_vksin(cg_v x, cg_v y) {  /* fdlibm's __kernel_sin(x, y, 1) */
    cg_v z = x * x, v = z * x, z2 = z * z;
    /* S2 + z S3 + z^2 (S4 + z S5 + z^2 S6): Estrin's scheme */
    cg_v r = CG_FMA(z2, CG_FMA(z2, CG_C(1.58969099521155010221e-10),
                               CG_FMA(z, CG_C(-2.50507602534068634195e-08),
                                      CG_C(2.75573137070700676789e-06))),
                    CG_FMA(z, CG_C(-1.98412698298579493134e-04), CG_C(8.33333333332248946124e-03)));
    /* x - ((z (y/2 - v r) - y) - v S1), S1 = -1/6 */
    cg_v t = CG_FMA(z, CG_FMA(-v, r, 0.5 * y), -y);
    return x - CG_FMA(v, CG_C(1.66666666666666324348e-01), t);
}
static inline cg_v cg_vkcos(cg_v x, cg_v y) {  /* fdlibm's __kernel_cos (FreeBSD's, 2008) */
    cg_v z = x * x, z2 = z * z, z4 = z2 * z2;
    /* C1 + z C2 + z^2 (C3 + z C4) + z^4 (C5 + z C6): Estrin's scheme */
    cg_v p = CG_FMA(z4, CG_FMA(z, CG_C(-1.13596475577881948265e-11), CG_C(2.08757232129817482790e-09)),
                    CG_FMA(z2, CG_FMA(z, CG_C(-2.75573143513906633035e-07),
                                      CG_C(2.48015872894767294178e-05)),
                           CG_FMA(z, CG_C(-1.38888888888741095749e-03),
                                  CG_C(4.16666666666666019037e-02))));
    cg_v hz = 0.5 * z, w = 1.0 - hz;  /* 1 - hz's rounding error carried: (1 - w) - hz */
    return w + (((1.0 - w) - hz) + CG_FMA(z2, p, -(x * y)));  /* z r - x y, r = z p */
}
/* both from one reduction; inlined always, so that sin alone does not compute cos */
static inline __attribute__((always_inline)) void cg_vsincos(cg_v x, cg_v *sin_x, cg_v *cos_x) {
    cg_v ax = CG_ABS(x), y0, y1, n = cg_vrem_pio2(ax, &y0, &y1);
    cg_m q = (cg_m)(n + CG_C(6755399441055744.0));  /* n's low bits */
    cg_v s = cg_vksin(y0, y1), c = cg_vkcos(y0, y1);
    cg_m odd = (q & 1) != 0, outside = ~(ax <= 786432.0);
    cg_v y = CG_SEL(odd, c, s);  /* sin(n pi/2 + y) */
    y = CG_SEL((q & 2) != 0, -y, y);
    y = CG_SEL(x < 0.0, -y, y);
    y = CG_SEL(ax < 7.450580596923828125e-9, x, y);  /* |x| < 2^-27: x */
    c = CG_SEL(odd, -s, c);  /* cos(n pi/2 + y) */
    c = CG_SEL((q & 2) != 0, -c, c);
    if (__builtin_expect(cg_vany(outside) != 0, 0)) {  /* one test for both */
        y = cg_vscalar_lanes(y, x, outside, sin);
        c = cg_vscalar_lanes(c, x, outside, cos);
    }
    *sin_x = y;
    *cos_x = c;
}
/* both, for the source's cgv_sincos: a function of its own, compiled here at -O2 with the
   kernels inlined (inlined into the source's parts, at their -Og, the kernels were calls) */
static __attribute__((unused)) void cg_vsincos_both(cg_v x, cg_v *sin_x, cg_v *cos_x) { cg_vsincos(x, sin_x, cos_x); }
static inline cg_v cg_vsin(cg_v x) { cg_v s, c; cg_vsincos(x, &s, &c); return s; }
static inline cg_v cg_vcos(cg_v x) { cg_v s, c; cg_vsincos(x, &s, &c); return c; }
/* sigmoid as the prelude's cg_sigmoid (SciPy's expit): e = exp(-|x|), 1/(1 + e) at x >= 0,
   e/(1 + e) below; one function at -O2 with its exp inlined (at the parts' -Og the exp was a
   call). NaN: x >= 0 is false, e/(1 + e) is NaN. */
static __attribute__((unused, noinline)) cg_v cg_vsigmoid(cg_v x) {
    cg_v e = cg_vexp(-CG_ABS(x));
    return CG_SEL(x >= 0.0, CG_C(1.0), e) / (1.0 + e);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
