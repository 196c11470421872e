/* Generated from circuitgrad's primitive table by scripts/gen_tape.py: do not edit.
   One case per primitive with a C form (the record's `c` field); the opcode is the
   primitive's position in CG_OP_NAMES. */

#include <math.h>

/* NumPy's maximum and minimum: NaN from either side propagates; at a tie (also 0.0 and
   -0.0) the second argument is returned, as NumPy does. */
static inline double cg_maximum(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double cg_minimum(double a, double b) { return (a < b || a != a) ? a : b; }

/* NumPy's sign: 0.0 at both zeros, NaN at NaN. */
static inline double cg_sign(double a) {
    return a > 0.0 ? 1.0 : a < 0.0 ? -1.0 : a == 0.0 ? 0.0 : a;
}

/* NumPy's npy_logaddexp: log(e^x + e^y) without overflow; x + log 2 at x == y (also for
   infinities of one sign), NaN where x - y is NaN. */
static inline double cg_logaddexp(double x, double y) {
    if (x == y) return x + 0.693147180559945309417232121458176568;
    double d = x - y;
    if (d > 0.0) return x + log1p(exp(-d));
    if (d <= 0.0) return y + log1p(exp(d));
    return d;
}

/* sigmoid as SciPy's expit (special.sigmoid): e = exp(-|x|), 1/(1 + e) at x >= 0, e/(1 + e)
   below (NaN there: x >= 0 is false for NaN). */
static inline double cg_sigmoid(double x) {
    double e = exp(-fabs(x));
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}

/* circuitgrad's pow, NumPy's power for a scalar exponent: sqrt at 0.5 (sqrt(-0.0) = -0.0,
   sqrt(-inf) = nan), a * a at 2 and 1 / a at -1; C's pow elsewhere. */
static inline double cg_pow(double a, double b) {
    return b == 0.5 ? sqrt(a) : b == 2.0 ? a * a : b == -1.0 ? 1.0 / a : pow(a, b);
}

/* NumPy's npy_logaddexp2: log2(2^x + 2^y) without overflow; x + 1 at x == y. */
static inline double cg_logaddexp2(double x, double y) {
    if (x == y) return x + 1.0;
    double d = x - y;
    if (d > 0.0) return x + 1.442695040888963407359924681001892137 * log1p(exp2(-d));
    if (d <= 0.0) return y + 1.442695040888963407359924681001892137 * log1p(exp2(d));
    return d;
}

/* NumPy's npy_divmod: C's fmod moved to the divisor's sign (Python's %), and the quotient
   (a - mod) / b floored and snapped to the nearest integer; at b == 0, fmod's NaN and a / b. */
static inline double cg_remainder(double a, double b) {
    double mod = fmod(a, b);
    if (b == 0.0) return mod;
    if (mod != 0.0) {
        if ((b < 0.0) != (mod < 0.0)) mod += b;
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}
static inline double cg_floor_divide(double a, double b) {
    if (b == 0.0) return a / b;
    double mod = fmod(a, b), div = (a - mod) / b, floordiv;
    if (mod != 0.0 && (b < 0.0) != (mod < 0.0)) div -= 1.0;
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, a / b);
    }
    return floordiv;
}

/* NumPy's fmax and fmin: NaN only where both are NaN; the first argument at a tie. */
static inline double cg_fmax(double a, double b) { return (a >= b || b != b) ? a : b; }
static inline double cg_fmin(double a, double b) { return (a <= b || b != b) ? a : b; }

/* NumPy's sinc, sin(πx)/(πx), with NumPy's 1e-20 in place of x = 0 (so sinc(0) = 1). */
static inline double cg_sinc(double x) {
    double y = 3.141592653589793 * (x == 0.0 ? 1e-20 : x);
    return sin(y) / y;
}

/* sinc's derivatives: j_n(z)/z^n at z = πx (j_n the spherical Bessel function; n = 0 is
   sinc), smooth and even, so (d/dx) sinc_d(x, n) = -π²·x·sinc_d(x, n + 1) has no 0/0.
   The power series below |z| = n + 2, the upward recurrence from sin and cos above (stable
   there); NaN unless n is an integer in [0, 64]. special.py computes it the same way. */
static double cg_sinc_d(double x, double n) {
    if (!(n >= 0.0 && n <= 64.0 && n == floor(n))) return NAN;
    int m = (int)n, k;
    double z = 3.141592653589793 * x;
    if (fabs(z) < n + 2.0) {
        double t = 1.0, w = -0.5 * z * z, sum;
        for (k = 1; k <= m; k++) t = t / (double)(2 * k + 1);
        sum = t;
        for (k = 1; k <= 60; k++) {
            t = t * (w / (double)(k * (2 * m + 2 * k + 1)));
            sum = sum + t;
        }
        return sum;
    }
    double s = sin(z), c = cos(z), j0 = s / z, j1 = s / (z * z) - c / z, j2, p = 1.0;
    if (m == 0) return j0;
    for (k = 1; k < m; k++) {
        j2 = (double)(2 * k + 1) / z * j1 - j0;
        j0 = j1;
        j1 = j2;
    }
    for (k = 0; k < m; k++) p = p * z;
    return j1 / p;
}

#define CG_OP_COUNT 79
static const char *const CG_OP_NAMES[CG_OP_COUNT] = {
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "neg",
    "sin",
    "cos",
    "tanh",
    "exp",
    "log",
    "sqrt",
    "square",
    "abs",
    "relu",
    "sigmoid",
    "step",
    "sign",
    "log1p",
    "expm1",
    "softplus",
    "erf",
    "erfc",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "sinh",
    "cosh",
    "asinh",
    "acosh",
    "atanh",
    "log2",
    "log10",
    "exp2",
    "hypot",
    "floor",
    "ceil",
    "round",
    "maximum",
    "minimum",
    "clip",
    "logaddexp",
    "cbrt",
    "remainder",
    "floor_divide",
    "fmod",
    "fmax",
    "fmin",
    "logaddexp2",
    "float_power",
    "sinc",
    "sinc_d",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "equal",
    "not_equal",
    "logical_and",
    "logical_or",
    "logical_not",
    "where",
    "logit",
    "xlogy",
    "xlog1py",
    "tanh_vjp",
    "sigmoid_vjp",
    "relu_vjp",
    "abs_vjp",
    "square_vjp",
    "sin_vjp",
    "cos_vjp",
    "sqrt_vjp",
    "pow_vjp",
    "add_mul",
    "sub_mul",
    "mul_sub",
};

#define CG_POINT_SWITCH \
    switch (op) { \
    case 0: /* add */ r[o] = r[a0] + r[a1]; break; \
    case 1: /* sub */ r[o] = r[a0] - r[a1]; break; \
    case 2: /* mul */ r[o] = r[a0] * r[a1]; break; \
    case 3: /* div */ r[o] = r[a0] / r[a1]; break; \
    case 4: /* pow */ r[o] = cg_pow(r[a0], r[a1]); break; \
    case 5: /* neg */ r[o] = -r[a0]; break; \
    case 6: /* sin */ r[o] = sin(r[a0]); break; \
    case 7: /* cos */ r[o] = cos(r[a0]); break; \
    case 8: /* tanh */ r[o] = tanh(r[a0]); break; \
    case 9: /* exp */ r[o] = exp(r[a0]); break; \
    case 10: /* log */ r[o] = log(r[a0]); break; \
    case 11: /* sqrt */ r[o] = sqrt(r[a0]); break; \
    case 12: /* square */ r[o] = r[a0] * r[a0]; break; \
    case 13: /* abs */ r[o] = fabs(r[a0]); break; \
    case 14: /* relu */ r[o] = cg_maximum(r[a0], 0.0); break; \
    case 15: /* sigmoid */ r[o] = cg_sigmoid(r[a0]); break; \
    case 16: /* step */ r[o] = (r[a0] >= 0.0 ? 1.0 : 0.0); break; \
    case 17: /* sign */ r[o] = cg_sign(r[a0]); break; \
    case 18: /* log1p */ r[o] = log1p(r[a0]); break; \
    case 19: /* expm1 */ r[o] = expm1(r[a0]); break; \
    case 20: /* softplus */ r[o] = cg_logaddexp(0.0, r[a0]); break; \
    case 21: /* erf */ r[o] = erf(r[a0]); break; \
    case 22: /* erfc */ r[o] = erfc(r[a0]); break; \
    case 23: /* tan */ r[o] = tan(r[a0]); break; \
    case 24: /* asin */ r[o] = asin(r[a0]); break; \
    case 25: /* acos */ r[o] = acos(r[a0]); break; \
    case 26: /* atan */ r[o] = atan(r[a0]); break; \
    case 27: /* atan2 */ r[o] = atan2(r[a0], r[a1]); break; \
    case 28: /* sinh */ r[o] = sinh(r[a0]); break; \
    case 29: /* cosh */ r[o] = cosh(r[a0]); break; \
    case 30: /* asinh */ r[o] = asinh(r[a0]); break; \
    case 31: /* acosh */ r[o] = acosh(r[a0]); break; \
    case 32: /* atanh */ r[o] = atanh(r[a0]); break; \
    case 33: /* log2 */ r[o] = log2(r[a0]); break; \
    case 34: /* log10 */ r[o] = log10(r[a0]); break; \
    case 35: /* exp2 */ r[o] = exp2(r[a0]); break; \
    case 36: /* hypot */ r[o] = hypot(r[a0], r[a1]); break; \
    case 37: /* floor */ r[o] = floor(r[a0]); break; \
    case 38: /* ceil */ r[o] = ceil(r[a0]); break; \
    case 39: /* round */ r[o] = rint(r[a0]); break; \
    case 40: /* maximum */ r[o] = cg_maximum(r[a0], r[a1]); break; \
    case 41: /* minimum */ r[o] = cg_minimum(r[a0], r[a1]); break; \
    case 42: /* clip */ r[o] = cg_minimum(cg_maximum(r[a0], r[a1]), r[a2]); break; \
    case 43: /* logaddexp */ r[o] = cg_logaddexp(r[a0], r[a1]); break; \
    case 44: /* cbrt */ r[o] = cbrt(r[a0]); break; \
    case 45: /* remainder */ r[o] = cg_remainder(r[a0], r[a1]); break; \
    case 46: /* floor_divide */ r[o] = cg_floor_divide(r[a0], r[a1]); break; \
    case 47: /* fmod */ r[o] = fmod(r[a0], r[a1]); break; \
    case 48: /* fmax */ r[o] = cg_fmax(r[a0], r[a1]); break; \
    case 49: /* fmin */ r[o] = cg_fmin(r[a0], r[a1]); break; \
    case 50: /* logaddexp2 */ r[o] = cg_logaddexp2(r[a0], r[a1]); break; \
    case 51: /* float_power */ r[o] = pow(r[a0], r[a1]); break; \
    case 52: /* sinc */ r[o] = cg_sinc(r[a0]); break; \
    case 53: /* sinc_d */ r[o] = cg_sinc_d(r[a0], r[a1]); break; \
    case 54: /* less */ r[o] = (r[a0] < r[a1] ? 1.0 : 0.0); break; \
    case 55: /* less_equal */ r[o] = (r[a0] <= r[a1] ? 1.0 : 0.0); break; \
    case 56: /* greater */ r[o] = (r[a0] > r[a1] ? 1.0 : 0.0); break; \
    case 57: /* greater_equal */ r[o] = (r[a0] >= r[a1] ? 1.0 : 0.0); break; \
    case 58: /* equal */ r[o] = (r[a0] == r[a1] ? 1.0 : 0.0); break; \
    case 59: /* not_equal */ r[o] = (r[a0] != r[a1] ? 1.0 : 0.0); break; \
    case 60: /* logical_and */ r[o] = (r[a0] != 0.0 && r[a1] != 0.0 ? 1.0 : 0.0); break; \
    case 61: /* logical_or */ r[o] = (r[a0] != 0.0 || r[a1] != 0.0 ? 1.0 : 0.0); break; \
    case 62: /* logical_not */ r[o] = (r[a0] == 0.0 ? 1.0 : 0.0); break; \
    case 63: /* where */ r[o] = (r[a0] != 0.0 ? r[a1] : r[a2]); break; \
    case 64: /* logit */ r[o] = (r[a0] < 0.3 || r[a0] > 0.65 ? log(r[a0] / (1.0 - r[a0])) : log1p(2.0 * (r[a0] - 0.5)) - log1p(-2.0 * (r[a0] - 0.5))); break; \
    case 65: /* xlogy */ r[o] = (r[a0] == 0.0 && r[a1] == r[a1] ? 0.0 : r[a0] * log(r[a1])); break; \
    case 66: /* xlog1py */ r[o] = (r[a0] == 0.0 && r[a1] == r[a1] ? 0.0 : r[a0] * log1p(r[a1])); break; \
    case 67: /* tanh_vjp */ r[o] = r[a0] * (1.0 - r[a1] * r[a1]); break; \
    case 68: /* sigmoid_vjp */ r[o] = r[a0] * (r[a1] * (1.0 - r[a1])); break; \
    case 69: /* relu_vjp */ r[o] = r[a0] * (r[a1] >= 0.0 ? 1.0 : 0.0); break; \
    case 70: /* abs_vjp */ r[o] = r[a0] * cg_sign(r[a1]); break; \
    case 71: /* square_vjp */ r[o] = r[a0] * (2.0 * r[a1]); break; \
    case 72: /* sin_vjp */ r[o] = r[a0] * cos(r[a1]); break; \
    case 73: /* cos_vjp */ r[o] = r[a0] * sin(r[a1]); break; \
    case 74: /* sqrt_vjp */ r[o] = 0.5 * (r[a0] / r[a1]); break; \
    case 75: /* pow_vjp */ r[o] = (r[a1] != 0.0 ? r[a0] * r[a2] / r[a1] : r[a2] < 0.0 ? r[a0] * cg_pow(r[a1], r[a2]) * r[a2] / r[a1] : r[a0] * (r[a2] != 0.0 ? r[a2] * cg_pow(r[a1], r[a2] - 1.0) : 0.0)); break; \
    case 76: /* add_mul */ r[o] = r[a0] + r[a1] * r[a2]; break; \
    case 77: /* sub_mul */ r[o] = r[a0] - r[a1] * r[a2]; break; \
    case 78: /* mul_sub */ r[o] = r[a1] * r[a2] - r[a0]; break; \
    default: break; \
    }

#define CG_CHUNK_SWITCH \
    switch (op) { \
    case 0: /* add */ for (l = 0; l < n; l++) y[l] = x0[l] + x1[l]; break; \
    case 1: /* sub */ for (l = 0; l < n; l++) y[l] = x0[l] - x1[l]; break; \
    case 2: /* mul */ for (l = 0; l < n; l++) y[l] = x0[l] * x1[l]; break; \
    case 3: /* div */ for (l = 0; l < n; l++) y[l] = x0[l] / x1[l]; break; \
    case 4: /* pow */ for (l = 0; l < n; l++) y[l] = cg_pow(x0[l], x1[l]); break; \
    case 5: /* neg */ for (l = 0; l < n; l++) y[l] = -x0[l]; break; \
    case 6: /* sin */ for (l = 0; l < n; l++) y[l] = sin(x0[l]); break; \
    case 7: /* cos */ for (l = 0; l < n; l++) y[l] = cos(x0[l]); break; \
    case 8: /* tanh */ for (l = 0; l < n; l++) y[l] = tanh(x0[l]); break; \
    case 9: /* exp */ for (l = 0; l < n; l++) y[l] = exp(x0[l]); break; \
    case 10: /* log */ for (l = 0; l < n; l++) y[l] = log(x0[l]); break; \
    case 11: /* sqrt */ for (l = 0; l < n; l++) y[l] = sqrt(x0[l]); break; \
    case 12: /* square */ for (l = 0; l < n; l++) y[l] = x0[l] * x0[l]; break; \
    case 13: /* abs */ for (l = 0; l < n; l++) y[l] = fabs(x0[l]); break; \
    case 14: /* relu */ for (l = 0; l < n; l++) y[l] = cg_maximum(x0[l], 0.0); break; \
    case 15: /* sigmoid */ for (l = 0; l < n; l++) y[l] = cg_sigmoid(x0[l]); break; \
    case 16: /* step */ for (l = 0; l < n; l++) y[l] = (x0[l] >= 0.0 ? 1.0 : 0.0); break; \
    case 17: /* sign */ for (l = 0; l < n; l++) y[l] = cg_sign(x0[l]); break; \
    case 18: /* log1p */ for (l = 0; l < n; l++) y[l] = log1p(x0[l]); break; \
    case 19: /* expm1 */ for (l = 0; l < n; l++) y[l] = expm1(x0[l]); break; \
    case 20: /* softplus */ for (l = 0; l < n; l++) y[l] = cg_logaddexp(0.0, x0[l]); break; \
    case 21: /* erf */ for (l = 0; l < n; l++) y[l] = erf(x0[l]); break; \
    case 22: /* erfc */ for (l = 0; l < n; l++) y[l] = erfc(x0[l]); break; \
    case 23: /* tan */ for (l = 0; l < n; l++) y[l] = tan(x0[l]); break; \
    case 24: /* asin */ for (l = 0; l < n; l++) y[l] = asin(x0[l]); break; \
    case 25: /* acos */ for (l = 0; l < n; l++) y[l] = acos(x0[l]); break; \
    case 26: /* atan */ for (l = 0; l < n; l++) y[l] = atan(x0[l]); break; \
    case 27: /* atan2 */ for (l = 0; l < n; l++) y[l] = atan2(x0[l], x1[l]); break; \
    case 28: /* sinh */ for (l = 0; l < n; l++) y[l] = sinh(x0[l]); break; \
    case 29: /* cosh */ for (l = 0; l < n; l++) y[l] = cosh(x0[l]); break; \
    case 30: /* asinh */ for (l = 0; l < n; l++) y[l] = asinh(x0[l]); break; \
    case 31: /* acosh */ for (l = 0; l < n; l++) y[l] = acosh(x0[l]); break; \
    case 32: /* atanh */ for (l = 0; l < n; l++) y[l] = atanh(x0[l]); break; \
    case 33: /* log2 */ for (l = 0; l < n; l++) y[l] = log2(x0[l]); break; \
    case 34: /* log10 */ for (l = 0; l < n; l++) y[l] = log10(x0[l]); break; \
    case 35: /* exp2 */ for (l = 0; l < n; l++) y[l] = exp2(x0[l]); break; \
    case 36: /* hypot */ for (l = 0; l < n; l++) y[l] = hypot(x0[l], x1[l]); break; \
    case 37: /* floor */ for (l = 0; l < n; l++) y[l] = floor(x0[l]); break; \
    case 38: /* ceil */ for (l = 0; l < n; l++) y[l] = ceil(x0[l]); break; \
    case 39: /* round */ for (l = 0; l < n; l++) y[l] = rint(x0[l]); break; \
    case 40: /* maximum */ for (l = 0; l < n; l++) y[l] = cg_maximum(x0[l], x1[l]); break; \
    case 41: /* minimum */ for (l = 0; l < n; l++) y[l] = cg_minimum(x0[l], x1[l]); break; \
    case 42: /* clip */ for (l = 0; l < n; l++) y[l] = cg_minimum(cg_maximum(x0[l], x1[l]), x2[l]); break; \
    case 43: /* logaddexp */ for (l = 0; l < n; l++) y[l] = cg_logaddexp(x0[l], x1[l]); break; \
    case 44: /* cbrt */ for (l = 0; l < n; l++) y[l] = cbrt(x0[l]); break; \
    case 45: /* remainder */ for (l = 0; l < n; l++) y[l] = cg_remainder(x0[l], x1[l]); break; \
    case 46: /* floor_divide */ for (l = 0; l < n; l++) y[l] = cg_floor_divide(x0[l], x1[l]); break; \
    case 47: /* fmod */ for (l = 0; l < n; l++) y[l] = fmod(x0[l], x1[l]); break; \
    case 48: /* fmax */ for (l = 0; l < n; l++) y[l] = cg_fmax(x0[l], x1[l]); break; \
    case 49: /* fmin */ for (l = 0; l < n; l++) y[l] = cg_fmin(x0[l], x1[l]); break; \
    case 50: /* logaddexp2 */ for (l = 0; l < n; l++) y[l] = cg_logaddexp2(x0[l], x1[l]); break; \
    case 51: /* float_power */ for (l = 0; l < n; l++) y[l] = pow(x0[l], x1[l]); break; \
    case 52: /* sinc */ for (l = 0; l < n; l++) y[l] = cg_sinc(x0[l]); break; \
    case 53: /* sinc_d */ for (l = 0; l < n; l++) y[l] = cg_sinc_d(x0[l], x1[l]); break; \
    case 54: /* less */ for (l = 0; l < n; l++) y[l] = (x0[l] < x1[l] ? 1.0 : 0.0); break; \
    case 55: /* less_equal */ for (l = 0; l < n; l++) y[l] = (x0[l] <= x1[l] ? 1.0 : 0.0); break; \
    case 56: /* greater */ for (l = 0; l < n; l++) y[l] = (x0[l] > x1[l] ? 1.0 : 0.0); break; \
    case 57: /* greater_equal */ for (l = 0; l < n; l++) y[l] = (x0[l] >= x1[l] ? 1.0 : 0.0); break; \
    case 58: /* equal */ for (l = 0; l < n; l++) y[l] = (x0[l] == x1[l] ? 1.0 : 0.0); break; \
    case 59: /* not_equal */ for (l = 0; l < n; l++) y[l] = (x0[l] != x1[l] ? 1.0 : 0.0); break; \
    case 60: /* logical_and */ for (l = 0; l < n; l++) y[l] = (x0[l] != 0.0 && x1[l] != 0.0 ? 1.0 : 0.0); break; \
    case 61: /* logical_or */ for (l = 0; l < n; l++) y[l] = (x0[l] != 0.0 || x1[l] != 0.0 ? 1.0 : 0.0); break; \
    case 62: /* logical_not */ for (l = 0; l < n; l++) y[l] = (x0[l] == 0.0 ? 1.0 : 0.0); break; \
    case 63: /* where */ for (l = 0; l < n; l++) y[l] = (x0[l] != 0.0 ? x1[l] : x2[l]); break; \
    case 64: /* logit */ for (l = 0; l < n; l++) y[l] = (x0[l] < 0.3 || x0[l] > 0.65 ? log(x0[l] / (1.0 - x0[l])) : log1p(2.0 * (x0[l] - 0.5)) - log1p(-2.0 * (x0[l] - 0.5))); break; \
    case 65: /* xlogy */ for (l = 0; l < n; l++) y[l] = (x0[l] == 0.0 && x1[l] == x1[l] ? 0.0 : x0[l] * log(x1[l])); break; \
    case 66: /* xlog1py */ for (l = 0; l < n; l++) y[l] = (x0[l] == 0.0 && x1[l] == x1[l] ? 0.0 : x0[l] * log1p(x1[l])); break; \
    case 67: /* tanh_vjp */ for (l = 0; l < n; l++) y[l] = x0[l] * (1.0 - x1[l] * x1[l]); break; \
    case 68: /* sigmoid_vjp */ for (l = 0; l < n; l++) y[l] = x0[l] * (x1[l] * (1.0 - x1[l])); break; \
    case 69: /* relu_vjp */ for (l = 0; l < n; l++) y[l] = x0[l] * (x1[l] >= 0.0 ? 1.0 : 0.0); break; \
    case 70: /* abs_vjp */ for (l = 0; l < n; l++) y[l] = x0[l] * cg_sign(x1[l]); break; \
    case 71: /* square_vjp */ for (l = 0; l < n; l++) y[l] = x0[l] * (2.0 * x1[l]); break; \
    case 72: /* sin_vjp */ for (l = 0; l < n; l++) y[l] = x0[l] * cos(x1[l]); break; \
    case 73: /* cos_vjp */ for (l = 0; l < n; l++) y[l] = x0[l] * sin(x1[l]); break; \
    case 74: /* sqrt_vjp */ for (l = 0; l < n; l++) y[l] = 0.5 * (x0[l] / x1[l]); break; \
    case 75: /* pow_vjp */ for (l = 0; l < n; l++) y[l] = (x1[l] != 0.0 ? x0[l] * x2[l] / x1[l] : x2[l] < 0.0 ? x0[l] * cg_pow(x1[l], x2[l]) * x2[l] / x1[l] : x0[l] * (x2[l] != 0.0 ? x2[l] * cg_pow(x1[l], x2[l] - 1.0) : 0.0)); break; \
    case 76: /* add_mul */ for (l = 0; l < n; l++) y[l] = x0[l] + x1[l] * x2[l]; break; \
    case 77: /* sub_mul */ for (l = 0; l < n; l++) y[l] = x0[l] - x1[l] * x2[l]; break; \
    case 78: /* mul_sub */ for (l = 0; l < n; l++) y[l] = x1[l] * x2[l] - x0[l]; break; \
    default: break; \
    }

#if defined(__GNUC__) && !defined(CG_SWITCH_ONLY)
#define CG_THREADED 1
static void
cg_run_point_threaded(const int32_t *code, Py_ssize_t ninstr, double *r)
{
    static const void *const label[CG_OP_COUNT] = {
        &&op_0,
        &&op_1,
        &&op_2,
        &&op_3,
        &&op_4,
        &&op_5,
        &&op_6,
        &&op_7,
        &&op_8,
        &&op_9,
        &&op_10,
        &&op_11,
        &&op_12,
        &&op_13,
        &&op_14,
        &&op_15,
        &&op_16,
        &&op_17,
        &&op_18,
        &&op_19,
        &&op_20,
        &&op_21,
        &&op_22,
        &&op_23,
        &&op_24,
        &&op_25,
        &&op_26,
        &&op_27,
        &&op_28,
        &&op_29,
        &&op_30,
        &&op_31,
        &&op_32,
        &&op_33,
        &&op_34,
        &&op_35,
        &&op_36,
        &&op_37,
        &&op_38,
        &&op_39,
        &&op_40,
        &&op_41,
        &&op_42,
        &&op_43,
        &&op_44,
        &&op_45,
        &&op_46,
        &&op_47,
        &&op_48,
        &&op_49,
        &&op_50,
        &&op_51,
        &&op_52,
        &&op_53,
        &&op_54,
        &&op_55,
        &&op_56,
        &&op_57,
        &&op_58,
        &&op_59,
        &&op_60,
        &&op_61,
        &&op_62,
        &&op_63,
        &&op_64,
        &&op_65,
        &&op_66,
        &&op_67,
        &&op_68,
        &&op_69,
        &&op_70,
        &&op_71,
        &&op_72,
        &&op_73,
        &&op_74,
        &&op_75,
        &&op_76,
        &&op_77,
        &&op_78,
    };
    const int32_t *ins = code, *end = code + 5 * ninstr;
    if (ins == end) return;
    goto *label[ins[0]];
op_0: /* add */ r[ins[1]] = r[ins[2]] + r[ins[3]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
op_1: /* sub */ r[ins[1]] = r[ins[2]] - r[ins[3]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
op_2: /* mul */ r[ins[1]] = r[ins[2]] * r[ins[3]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
op_3: /* div */ r[ins[1]] = r[ins[2]] / r[ins[3]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
op_4: /* pow */ r[ins[1]] = cg_pow(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_5: /* neg */ r[ins[1]] = -r[ins[2]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
op_6: /* sin */ r[ins[1]] = sin(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_7: /* cos */ r[ins[1]] = cos(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_8: /* tanh */ r[ins[1]] = tanh(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_9: /* exp */ r[ins[1]] = exp(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_10: /* log */ r[ins[1]] = log(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_11: /* sqrt */ r[ins[1]] = sqrt(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_12: /* square */ r[ins[1]] = r[ins[2]] * r[ins[2]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
op_13: /* abs */ r[ins[1]] = fabs(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_14: /* relu */ r[ins[1]] = cg_maximum(r[ins[2]], 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_15: /* sigmoid */ r[ins[1]] = cg_sigmoid(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_16: /* step */ r[ins[1]] = (r[ins[2]] >= 0.0 ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_17: /* sign */ r[ins[1]] = cg_sign(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_18: /* log1p */ r[ins[1]] = log1p(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_19: /* expm1 */ r[ins[1]] = expm1(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_20: /* softplus */ r[ins[1]] = cg_logaddexp(0.0, r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_21: /* erf */ r[ins[1]] = erf(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_22: /* erfc */ r[ins[1]] = erfc(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_23: /* tan */ r[ins[1]] = tan(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_24: /* asin */ r[ins[1]] = asin(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_25: /* acos */ r[ins[1]] = acos(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_26: /* atan */ r[ins[1]] = atan(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_27: /* atan2 */ r[ins[1]] = atan2(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_28: /* sinh */ r[ins[1]] = sinh(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_29: /* cosh */ r[ins[1]] = cosh(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_30: /* asinh */ r[ins[1]] = asinh(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_31: /* acosh */ r[ins[1]] = acosh(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_32: /* atanh */ r[ins[1]] = atanh(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_33: /* log2 */ r[ins[1]] = log2(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_34: /* log10 */ r[ins[1]] = log10(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_35: /* exp2 */ r[ins[1]] = exp2(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_36: /* hypot */ r[ins[1]] = hypot(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_37: /* floor */ r[ins[1]] = floor(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_38: /* ceil */ r[ins[1]] = ceil(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_39: /* round */ r[ins[1]] = rint(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_40: /* maximum */ r[ins[1]] = cg_maximum(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_41: /* minimum */ r[ins[1]] = cg_minimum(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_42: /* clip */ r[ins[1]] = cg_minimum(cg_maximum(r[ins[2]], r[ins[3]]), r[ins[4]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_43: /* logaddexp */ r[ins[1]] = cg_logaddexp(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_44: /* cbrt */ r[ins[1]] = cbrt(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_45: /* remainder */ r[ins[1]] = cg_remainder(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_46: /* floor_divide */ r[ins[1]] = cg_floor_divide(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_47: /* fmod */ r[ins[1]] = fmod(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_48: /* fmax */ r[ins[1]] = cg_fmax(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_49: /* fmin */ r[ins[1]] = cg_fmin(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_50: /* logaddexp2 */ r[ins[1]] = cg_logaddexp2(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_51: /* float_power */ r[ins[1]] = pow(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_52: /* sinc */ r[ins[1]] = cg_sinc(r[ins[2]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_53: /* sinc_d */ r[ins[1]] = cg_sinc_d(r[ins[2]], r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_54: /* less */ r[ins[1]] = (r[ins[2]] < r[ins[3]] ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_55: /* less_equal */ r[ins[1]] = (r[ins[2]] <= r[ins[3]] ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_56: /* greater */ r[ins[1]] = (r[ins[2]] > r[ins[3]] ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_57: /* greater_equal */ r[ins[1]] = (r[ins[2]] >= r[ins[3]] ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_58: /* equal */ r[ins[1]] = (r[ins[2]] == r[ins[3]] ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_59: /* not_equal */ r[ins[1]] = (r[ins[2]] != r[ins[3]] ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_60: /* logical_and */ r[ins[1]] = (r[ins[2]] != 0.0 && r[ins[3]] != 0.0 ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_61: /* logical_or */ r[ins[1]] = (r[ins[2]] != 0.0 || r[ins[3]] != 0.0 ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_62: /* logical_not */ r[ins[1]] = (r[ins[2]] == 0.0 ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_63: /* where */ r[ins[1]] = (r[ins[2]] != 0.0 ? r[ins[3]] : r[ins[4]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_64: /* logit */ r[ins[1]] = (r[ins[2]] < 0.3 || r[ins[2]] > 0.65 ? log(r[ins[2]] / (1.0 - r[ins[2]])) : log1p(2.0 * (r[ins[2]] - 0.5)) - log1p(-2.0 * (r[ins[2]] - 0.5))); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_65: /* xlogy */ r[ins[1]] = (r[ins[2]] == 0.0 && r[ins[3]] == r[ins[3]] ? 0.0 : r[ins[2]] * log(r[ins[3]])); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_66: /* xlog1py */ r[ins[1]] = (r[ins[2]] == 0.0 && r[ins[3]] == r[ins[3]] ? 0.0 : r[ins[2]] * log1p(r[ins[3]])); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_67: /* tanh_vjp */ r[ins[1]] = r[ins[2]] * (1.0 - r[ins[3]] * r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_68: /* sigmoid_vjp */ r[ins[1]] = r[ins[2]] * (r[ins[3]] * (1.0 - r[ins[3]])); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_69: /* relu_vjp */ r[ins[1]] = r[ins[2]] * (r[ins[3]] >= 0.0 ? 1.0 : 0.0); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_70: /* abs_vjp */ r[ins[1]] = r[ins[2]] * cg_sign(r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_71: /* square_vjp */ r[ins[1]] = r[ins[2]] * (2.0 * r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_72: /* sin_vjp */ r[ins[1]] = r[ins[2]] * cos(r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_73: /* cos_vjp */ r[ins[1]] = r[ins[2]] * sin(r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_74: /* sqrt_vjp */ r[ins[1]] = 0.5 * (r[ins[2]] / r[ins[3]]); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_75: /* pow_vjp */ r[ins[1]] = (r[ins[3]] != 0.0 ? r[ins[2]] * r[ins[4]] / r[ins[3]] : r[ins[4]] < 0.0 ? r[ins[2]] * cg_pow(r[ins[3]], r[ins[4]]) * r[ins[4]] / r[ins[3]] : r[ins[2]] * (r[ins[4]] != 0.0 ? r[ins[4]] * cg_pow(r[ins[3]], r[ins[4]] - 1.0) : 0.0)); ins += 5; if (ins == end) return; goto *label[ins[0]];
op_76: /* add_mul */ r[ins[1]] = r[ins[2]] + r[ins[3]] * r[ins[4]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
op_77: /* sub_mul */ r[ins[1]] = r[ins[2]] - r[ins[3]] * r[ins[4]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
op_78: /* mul_sub */ r[ins[1]] = r[ins[3]] * r[ins[4]] - r[ins[2]]; ins += 5; if (ins == end) return; goto *label[ins[0]];
}
#endif
