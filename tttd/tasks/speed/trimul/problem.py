"""TriMul (AlphaFold3's outgoing triangle multiplicative update): reference, inputs, check.

Written for tttd from the description in SPEC 5.5 (GPU MODE's TriMul contest). This file is the
``reference`` module a candidate may import, and the harness's private copy of the problem.
Unlike the contest, the weights are drawn from the per-case seeded generator (SPEC 5.5: the
contest drew them from the global RNG, so they were fixed but unseeded).
"""

import math

import torch
import torch.nn.functional as F


def _device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def generate_input(seed, seqlen, bs, dim, hiddendim, nomask, distribution):
    """(input [bs,N,N,dim] fp32, mask [bs,N,N], weights dict, config dict), all from ``seed``; the mask is
    fp32 ones without a mask and int64 zeros/ones with one, as the contest's generator makes them."""
    dev = _device()
    g = torch.Generator(device=dev)
    g.manual_seed(int(seed))
    shape = (bs, seqlen, seqlen, dim)
    if distribution == "cauchy":
        u = torch.rand(shape, generator=g, device=dev, dtype=torch.float32)
        x = 2.0 * torch.tan(math.pi * (u - 0.5))  # Cauchy(0, 2)
    else:
        x = torch.randn(shape, generator=g, device=dev, dtype=torch.float32)
    if nomask:
        mask = torch.ones((bs, seqlen, seqlen), device=dev, dtype=torch.float32)
    else:
        mask = torch.randint(0, 2, (bs, seqlen, seqlen), generator=g, device=dev)  # int64, as the contest

    def randn(*s, scale=1.0):
        return torch.randn(s, generator=g, device=dev, dtype=torch.float32) * scale

    h = hiddendim
    weights = {
        "norm.weight": randn(dim),
        "norm.bias": randn(dim),
        "left_proj.weight": randn(h, dim, scale=h ** -0.5),
        "right_proj.weight": randn(h, dim, scale=h ** -0.5),
        "left_gate.weight": randn(h, dim, scale=h ** -0.5),
        "right_gate.weight": randn(h, dim, scale=h ** -0.5),
        "out_gate.weight": randn(h, dim, scale=h ** -0.5),
        "to_out_norm.weight": randn(h),
        "to_out_norm.bias": randn(h),
        "to_out.weight": randn(dim, h, scale=dim ** -0.5),
    }
    return x, mask, weights, {"dim": dim, "hidden_dim": h}


def work(seqlen, bs, dim, hiddendim, nomask, distribution):
    """The least a call must move (the speed kit's physics floor): read the input and mask, write the
    output, fp32; FLOPs are not declared (tensor cores are far faster than any measured fp32 rate)."""
    n = bs * seqlen * seqlen
    return {"bytes": 4 * n * dim * 2 + 4 * n, "flops": 0}


def ref_kernel(data):
    """The outgoing triangle multiplication in plain fp32 PyTorch, TF32 off."""
    x, mask, w, config = data
    dim, hidden = config["dim"], config["hidden_dim"]
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        x = F.layer_norm(x, (dim,), w["norm.weight"], w["norm.bias"])
        m = mask.unsqueeze(-1)
        left = F.linear(x, w["left_proj.weight"]) * m * torch.sigmoid(F.linear(x, w["left_gate.weight"]))
        right = F.linear(x, w["right_proj.weight"]) * m * torch.sigmoid(F.linear(x, w["right_gate.weight"]))
        out = torch.einsum("bikd,bjkd->bijd", left, right)
        out = F.layer_norm(out, (hidden,), w["to_out_norm.weight"], w["to_out_norm.bias"])
        out = out * torch.sigmoid(F.linear(x, w["out_gate.weight"]))
        return F.linear(out, w["to_out.weight"])
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check(output, expected, rtol=2e-2, atol=2e-2):
    """None when |out - ref| <= atol + rtol*|ref| elementwise and NaN/+-Inf agree; else why not.
    Any output dtype is accepted and compared as fp32 (as the contest)."""
    if type(output) is not torch.Tensor:
        return f"expected a torch.Tensor, got {type(output).__name__}"
    if output.shape != expected.shape:
        return f"shape {tuple(output.shape)}, expected {tuple(expected.shape)}"
    if output.is_complex():
        return f"dtype {output.dtype}: a real tensor is expected"
    out = output.to(device=expected.device, dtype=torch.float32)
    expected = expected.to(torch.float32)
    for name, f in (("NaN", torch.isnan), ("+Inf", torch.isposinf), ("-Inf", torch.isneginf)):
        n = int((f(out) != f(expected)).sum())
        if n:
            return f"{n} elements disagree on {name}"
    fin = torch.isfinite(expected)
    bad = (out - expected).abs() > atol + rtol * expected.abs()
    bad &= fin
    n = int(bad.sum())
    if n:
        i = int(torch.nonzero(bad.flatten())[0])
        return (f"{n} of {out.numel()} elements differ beyond {atol:g} + {rtol:g}*|ref| (first at flat "
                f"index {i}: {float(out.flatten()[i])!r} vs {float(expected.flatten()[i])!r})")
    return None
