def f(w, x, b, y):
    # forward: the values of the nodes
    v2 = w * x
    z = v2 + b
    o = xp.maximum(z, 0.0)
    v8 = y - o
    v9 = xp.square(v8)
    J = 0.5 * v9
    # backward: adjoints v_bar = ∂J/∂v (the notes' δ), last node first
    v12 = 2.0 * v8
    y_bar = 0.5 * v12
    o_bar = (-0.5) * v12
    v16 = xp.astype(z >= 0.0, xp.float64)
    z_bar = o_bar * v16
    w_bar = z_bar * x
    x_bar = z_bar * w
    return _Outputs(J=J, dJ_dw=w_bar, dJ_dx=x_bar, dJ_db=z_bar, dJ_dy=y_bar)