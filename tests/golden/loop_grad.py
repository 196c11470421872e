def f(x, r):
    # forward: the values of the nodes
    # scan0: 50 steps of body 0 (4 nodes: 1 carry, 1 sequence, 1 closure), keeping the carry
    #   before each step
    v3 = scan0(x, _k0, r)
    s_2 = v3[..., :3]
    v5 = s_2 * s_2
    J = xp.sum(v5, axis=-1)
    del v5
    # backward: adjoints v_bar = ∂J/∂v (the notes' δ), last node first
    s_2_bar = s_2 + s_2
    del s_2
    v8 = v3[..., 3:]
    del v3
    v9 = _cg.reshape(v8, (50, 3), 1)
    del v8
    # scan1: 50 steps of body 1 (7 nodes: 2 carries, 2 sequences, 1 closure), last step first
    v11 = scan1(s_2_bar, 0.0, v9, _k0, r)
    del s_2_bar, v9
    x_bar = v11[..., :3]
    r_bar = v11[..., 3]
    del v11
    return _Outputs(J=J, dJ_dx=x_bar, dJ_dr=r_bar)