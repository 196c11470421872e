/* to_fused's contraction loop: out[o] = sum over the inner index t of a[o, t] * b[o, t], each
   output entry's sum from +0.0 through the inner indices in order (row-major over the inner
   axes), whatever the loop's order around it, so an entry's bits do not depend on the batch
   around it or on the lane it falls in. Needs KERNEL_MACROS (CG_LOAD, CG_STORE, CG_ACC).

   meta: no (output axes, at least 1: the last is the row, run CG_W entries per vector),
   nq (inner axes), then shape[no + nq], sa[no + nq], sb[no + nq], so[no]: the loop's shape
   and each array's strides in entries (0 where it does not vary). */
#define CG_REGISTER_INNER 64  /* inner lengths summed in a register; longer: in the output */
#define CG_CONTRACT_AXES 128

/* A row's operand vector at entry j: kind 0 broadcasts p[0], 1 reads CG_W contiguous entries,
   2 gathers them at stride s. Kinds are constants where it is called: one copy of each loop. */
static inline __attribute__((always_inline)) cg_v cg_row_load(const double *p, long s, long j,
                                                              int kind) {
    cg_v v;
    if (kind == 0) return CG_C(p[0]);
    if (kind == 1) { memcpy(&v, p + j, sizeof(cg_v)); return v; }
#if CG_W > 1
    {
        cg_lanes u;
        int l;
        for (l = 0; l < CG_W; l++) u.d[l] = p[(j + l) * s];
        return u.v;
    }
#else
    return p[j * s];
#endif
}

/* One row of sums in registers: the full vectors, then the last entries one by one (the same
   adds, in the same order, as a lane). */
static inline __attribute__((always_inline)) void cg_contract_row(
        const double *a, const double *b, double *out, long m, long ra, long rb, long ro,
        const long *ia, const long *ib, long total, int ka, int kb) {
    long j, t;
    for (j = 0; j + CG_W <= m; j += CG_W) {
        cg_v acc = CG_C(0.0);
        for (t = 0; t < total; t++)
            acc += cg_row_load(a + ia[t], ra, j, ka) * cg_row_load(b + ib[t], rb, j, kb);
        if (ro == 1) memcpy(out + j, &acc, sizeof(cg_v));
        else CG_STORE(out, ro, j, CG_W, acc);
    }
    for (; j < m; j++) {
        double s = 0.0;
        for (t = 0; t < total; t++) s += a[ia[t] + j * ra] * b[ib[t] + j * rb];
        out[j * ro] = s;
    }
}

#define CG_ROW_CASE(x, y) case (x) * 3 + (y): cg_contract_row(a + pa, b + pb, out + po, m, ra, \
    rb, ro, ia, ib, total, (x), (y)); break;

void cg_contract(const long *meta, const double *a, const double *b, double *out) {
    const long no = meta[0], nq = meta[1], nd = no + nq;
    const long *shape = meta + 2, *sa = shape + nd, *sb = sa + nd, *so = sb + nd;
    const long m = shape[no - 1], ra = sa[no - 1], rb = sb[no - 1], ro = so[no - 1];
    long total = 1, idx[CG_CONTRACT_AXES], d, t, j, o, outer = 1, pa = 0, pb = 0, po = 0;
    int w;
    cg_v x, y;
    for (d = no; d < nd; d++) total *= shape[d];
    for (d = 0; d < nd; d++) idx[d] = 0;
    if (total <= CG_REGISTER_INNER) {  /* a row of sums in registers, the inner loop inside */
        long ia[CG_REGISTER_INNER], ib[CG_REGISTER_INNER], oa = 0, ob = 0;
        for (t = 0; t < total; t++) {  /* the inner index's offsets, row-major */
            ia[t] = oa;
            ib[t] = ob;
            for (d = nd - 1; d >= no; d--) {
                idx[d]++;
                oa += sa[d];
                ob += sb[d];
                if (idx[d] < shape[d]) break;
                oa -= sa[d] * shape[d];
                ob -= sb[d] * shape[d];
                idx[d] = 0;
            }
        }
        for (d = 0; d + 1 < no; d++) outer *= shape[d];
        {
            const int ka = ra == 0 ? 0 : ra == 1 ? 1 : 2, kb = rb == 0 ? 0 : rb == 1 ? 1 : 2;
            for (o = 0; o < outer; o++) {
            switch (ka * 3 + kb) {
            CG_ROW_CASE(0, 0) CG_ROW_CASE(0, 1) CG_ROW_CASE(0, 2)
            CG_ROW_CASE(1, 0) CG_ROW_CASE(1, 1) CG_ROW_CASE(1, 2)
            CG_ROW_CASE(2, 0) CG_ROW_CASE(2, 1) CG_ROW_CASE(2, 2)
            }
            for (d = no - 2; d >= 0; d--) {
                idx[d]++;
                pa += sa[d];
                pb += sb[d];
                po += so[d];
                if (idx[d] < shape[d]) break;
                pa -= sa[d] * shape[d];
                pb -= sb[d] * shape[d];
                po -= so[d] * shape[d];
                idx[d] = 0;
            }
            }
        }
        return;
    }
    /* A long inner loop: the output (zeros from the caller) accumulates a term per inner index,
       the inner axes outermost, so that many sums run side by side (the same adds, in order). */
    {
        long order[CG_CONTRACT_AXES], k, n = 0;  /* the odometer's axes: inner ones, then outer */
        for (d = no; d < nd; d++) order[n++] = d;
        for (d = 0; d + 1 < no; d++) order[n++] = d;
        for (d = 0; d < n; d++) outer *= shape[order[d]];
        for (o = 0; o < outer; o++) {
            for (j = 0; j < m; j += CG_W) {
                w = m - j < CG_W ? (int)(m - j) : CG_W;
                CG_LOAD(x, a + pa, ra, j, w);
                CG_LOAD(y, b + pb, rb, j, w);
                CG_ACC(out + po, ro, j, w, x * y);
            }
            for (k = n - 1; k >= 0; k--) {
                d = order[k];
                idx[d]++;
                pa += sa[d];
                pb += sb[d];
                if (d < no) po += so[d];
                if (idx[d] < shape[d]) break;
                pa -= sa[d] * shape[d];
                pb -= sb[d] * shape[d];
                if (d < no) po -= so[d] * shape[d];
                idx[d] = 0;
            }
        }
    }
}
