"""Every numerical tolerance of the test suite, in one place."""

FD_ERROR = 1e-5        # check_grad's error (central differences, eps 1e-6) on smooth programs
SYMPY_RTOL = 1e-9      # circuitgrad's gradient vs sympy's diff, evaluated in float64
NOTES_RTOL = 1e-12     # vs the notes' closed forms written out in NumPy
ARRAY_ULPS = 4         # another array library's result vs NumPy's, in units in the last place
                       # (per term of the longest sum: other libraries sum in other orders)
COMPILED_ULPS = 4      # to_tape / to_c against to_numpy, one primitive: libm vs NumPy's loops
COMPILED_RTOL = 1e-9   # the same on whole programs (one op's ulps grow along a chain) and on
                       # scalarized tensor ops (sums left to right where NumPy adds pairwise)
