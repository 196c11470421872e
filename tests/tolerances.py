"""Every numerical tolerance of the test suite, in one place."""

FD_ERROR = 1e-5        # check_grad's error (central differences, eps 1e-6) on smooth programs
SYMPY_RTOL = 1e-9      # circuitgrad's gradient vs sympy's diff, evaluated in float64
NOTES_RTOL = 1e-12     # vs the notes' closed forms written out in NumPy
ARRAY_ULPS = 4         # another array library's result vs NumPy's, in units in the last place
                       # (per term of the longest sum: other libraries sum in other orders)
COMPILED_ULPS = 4      # to_tape / to_c against to_numpy, one primitive: libm vs NumPy's loops
COMPILED_RTOL = 1e-9   # the same on whole programs (one op's ulps grow along a chain) and on
                       # scalarized tensor ops (sums left to right where NumPy adds pairwise)

# The cross-lowering bound of each elementwise primitive, in units in the last place (to_tape
# and to_c against to_numpy; docs/semantics.md's table): 0 is bit for bit. Special values
# (±0, ±inf, NaN) agree exactly whatever the bound. Measured on CPUs with and without
# NumPy's AVX-512 kernels (tests/lower/test_numeric_contract.py), with room for another libm.
OP_ULPS = {
    **dict.fromkeys(("add", "sub", "mul", "div", "neg", "sqrt", "square", "abs", "relu", "step",
                     "sign", "floor", "ceil", "round", "maximum", "minimum", "less",
                     "less_equal", "greater", "greater_equal", "equal", "not_equal",
                     "logical_and", "logical_or", "logical_not"), 0),
    **dict.fromkeys(("pow", "sin", "cos", "exp", "log", "log1p", "expm1", "tan", "asin", "acos",
                     "atan", "atan2", "sinh", "cosh", "asinh", "acosh", "atanh", "log2",
                     "log10", "exp2", "hypot", "erf", "cbrt"), 2),
    **dict.fromkeys(("tanh", "sigmoid", "softplus"), 4),
    # issue 26: npy_divmod's and npy_logaddexp2's C forms, the same libm calls as NumPy's loops
    **dict.fromkeys(("remainder", "floor_divide", "fmod", "fmax", "fmin"), 0),
    "logaddexp2": 2,
    "float_power": 2,
    "sinc": 4,  # sin's 2 ulp, and the division
    "sinc_d": 16,  # sin and cos through the recurrence j_(k+1) = (2k+1)/z·j_k − j_(k−1) (0 here)
    "logaddexp": 256,  # to_c's own form against NumPy's, where the result is near 0
    "erfc": 64,  # scipy's erfc against the C library's, in the far tail
    "logit": 2,  # SciPy's two-range formula over libm's log and log1p (NumPy's are SciPy's)
    **dict.fromkeys(("xlogy", "xlog1py"), 2),  # x·log(y): NumPy's log against libm's
}
