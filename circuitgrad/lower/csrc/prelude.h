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

/* circuitgrad's pow, NumPy's power for a scalar exponent: sqrt at 0.5 (sqrt(-0.0) = -0.0,
   sqrt(-inf) = nan), a * a at 2 and 1 / a at -1; C's pow elsewhere. */
static inline double cg_pow(double a, double b) {
    return b == 0.5 ? sqrt(a) : b == 2.0 ? a * a : b == -1.0 ? 1.0 / a : pow(a, b);
}
