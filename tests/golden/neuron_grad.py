def f(w, x, b, y):
    # forward: the values of the nodes
    v2 = w * x
    z = v2 + b
    o = xp.maximum(z, 0.0)
    v8 = y - o
    v9 = xp.square(v8)
    J = 0.5 * v9
    # backward: adjoints v_bar = ∂J/∂v (the notes' δ), last node first
    y_bar = 0.5 * (2.0 * v8)
    o_bar = (-0.5) * (2.0 * v8)
    z_bar = o_bar * xp.astype(z >= 0.0, xp.float64)
    w_bar = z_bar * x
    x_bar = z_bar * w
    return _Outputs(J=J, dJ_dw=w_bar, dJ_dx=x_bar, dJ_db=z_bar, dJ_dy=y_bar)