"""The contest's ``task`` module: the type aliases candidates import (``from task import input_t, output_t``)."""

from typing import TypeVar

import torch

input_t = TypeVar("input_t", bound=tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], dict[str, int]])
output_t = TypeVar("output_t", bound=torch.Tensor)
