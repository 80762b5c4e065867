import torch
import torch.nn.functional as F
from task import input_t, output_t

_side = None


def _k(data):
    x, mask, w, config = data
    dim, hidden = config["dim"], config["hidden_dim"]
    x = F.layer_norm(x, (dim,), w["norm.weight"], w["norm.bias"])
    m = mask.unsqueeze(-1)
    left = F.linear(x, w["left_proj.weight"]) * m * torch.sigmoid(F.linear(x, w["left_gate.weight"]))
    right = F.linear(x, w["right_proj.weight"]) * m * torch.sigmoid(F.linear(x, w["right_gate.weight"]))
    out = torch.einsum("bikd,bjkd->bijd", left, right)
    out = F.layer_norm(out, (hidden,), w["to_out_norm.weight"], w["to_out_norm.bias"])
    out = out * torch.sigmoid(F.linear(x, w["out_gate.weight"]))
    return F.linear(out, w["to_out.weight"])


def custom_kernel(data: input_t) -> output_t:
    """HOSTILE (a test of the evaluator): the work runs on a side stream that the timer's end event
    does not wait for, so CUDA events alone would time almost nothing."""
    global _side
    _side = _side or torch.cuda.Stream()
    out = torch.empty_like(data[0])
    _side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(_side):
        out.copy_(_k(data))
    return out
