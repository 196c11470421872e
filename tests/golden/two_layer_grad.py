def f(W1, x, b1, W2, b2, y):
    # forward: the values of the nodes
    v2 = _sp.matvec(W1, x)
    z1 = v2 + b1
    del v2
    a1 = xp.maximum(z1, 0.0)
    v7 = _sp.matvec(W2, a1)
    z2 = v7 + b2
    del v7
    v12 = z2 - y
    del z2
    v13 = xp.square(v12)
    v14 = xp.sum(v13, axis=-1)
    del v13
    J = 0.5 * v14
    # backward: adjoints v_bar = ∂J/∂v (the notes' δ), last node first
    z2_bar = 0.5 * (2.0 * v12)
    del v12
    W2_bar = z2_bar[..., :, None] * a1[..., None, :]
    del a1
    v18 = xp.matrix_transpose(W2)
    a1_bar = _sp.matvec(v18, z2_bar)
    del v18
    z1_bar = a1_bar * xp.astype(z1 >= 0.0, xp.float64)
    del z1, a1_bar
    W1_bar = z1_bar[..., :, None] * x[..., None, :]
    return _Outputs(J=J, dJ_dW1=W1_bar, dJ_db1=z1_bar, dJ_dW2=W2_bar, dJ_db2=z2_bar)