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
