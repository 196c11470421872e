"""Gradient sizes pinned as golden numbers, computed on main before the adjoint sweep was
split into helpers (issue 24): every gradient keeps its node count, fused and unfused, simplified
and raw, scalar and tensor, with scatters (reads of parts) and broadcasting."""

import pytest

import circuitgrad as cg

# (program, shapes, {(fused, simplify): size})
GOLDEN = [
    ('J = w*x + b', None,
     {(True, True): 2, (True, False): 2, (False, True): 2, (False, False): 2}),
    ('J = x*x*x - y/x + sin(x)*cos(y)', None,
     {(True, True): 17, (True, False): 17, (False, True): 20, (False, False): 20}),
    ('J = (a - b)*(a - b) - exp(-a) + 3*log(b)', None,
     {(True, True): 12, (True, False): 12, (False, True): 12, (False, False): 12}),
    ('J = tanh(x) + sigmoid(y) + relu(x - y)', None,
     {(True, True): 11, (True, False): 11, (False, True): 13, (False, False): 13}),
    ('J = atan2(y, x) - sqrt(x*x + y*y)', None,
     {(True, True): 17, (True, False): 17, (False, True): 20, (False, False): 20}),
    ('J = -(2*x) - (y - x)/3 + x**3 - y**-2', None,
     {(True, True): 13, (True, False): 13, (False, True): 15, (False, False): 15}),
    ('J = abs(x) * maximum(x, y) - minimum(x, 2*y)', None,
     {(True, True): 19, (True, False): 19, (False, True): 22, (False, False): 22}),
    ('z = w0*x0 + w1*x1 + b\na = relu(z)\nJ = 0.5*(y - a)**2', None,
     {(True, True): 15, (True, False): 15, (False, True): 17, (False, False): 17}),
    ('J = cos(x) - cos(y) - (x - y)*(y - x)', None,
     {(True, True): 13, (True, False): 13, (False, True): 13, (False, False): 13}),
    ('J = where(x > y, x*y, -x) + clip(x, -1, 1)', None,
     {(True, True): 12, (True, False): 12, (False, True): 13, (False, False): 13}),
    ('J = sum(W @ x + b)', {'W': (3, 4), 'x': (4,), 'b': (3,)},
     {(True, True): 7, (True, False): 7, (False, True): 7, (False, False): 7}),
    ('J = sum(relu(X @ W.T + b) ** 2)', {'X': (5, 4), 'W': (3, 4), 'b': (3,)},
     {(True, True): 13, (True, False): 13, (False, True): 14, (False, False): 14}),
    ('J = mean(sigmoid(A * B), 0) @ v', {'A': (5, 1), 'B': (1, 3), 'v': (3,)},
     {(True, True): 11, (True, False): 11, (False, True): 13, (False, False): 13}),
    ('J = sum(s * M) + mean(M, axis=1) @ u', {'s': (), 'M': (2, 3), 'u': (2,)},
     {(True, True): 9, (True, False): 9, (False, True): 9, (False, False): 9}),
    ('J = sum((X + d) * (X - d))', {'X': (4, 3), 'd': (3,)},
     {(True, True): 8, (True, False): 8, (False, True): 8, (False, False): 8}),
    ('J = sum(exp(C * R) / (1 + C))', {'C': (4, 1), 'R': (1, 5)},
     {(True, True): 14, (True, False): 14, (False, True): 14, (False, False): 14}),
    ('J = x[0]*x[1] - x[2]*x[0] + sum(x[1:]**2)', {'x': (4,)},
     {(True, True): 14, (True, False): 14, (False, True): 14, (False, False): 14}),
    ('J = sum(tanh(x[1:] - x[:-1])) + x[3]*y', {'x': (5,), 'y': ()},
     {(True, True): 11, (True, False): 11, (False, True): 12, (False, False): 12}),
    ('J = sum(-(x * y) - 2 * (x - y))', {'x': (3,), 'y': (3,)},
     {(True, True): 8, (True, False): 8, (False, True): 8, (False, False): 8}),
]


@pytest.mark.parametrize("text, shapes, sizes", GOLDEN)
def test_gradient_sizes_are_pinned(text, shapes, sizes):
    c = cg.parse(text, shapes=shapes)
    for (fused, simplify), size in sizes.items():
        g = cg.grad(c, fused=fused, simplify=simplify)
        g.validate()
        assert g.size == size, (fused, simplify)
