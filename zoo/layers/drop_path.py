"""Stochastic depth (Huang et al., 2016): drop a block's residual branch per sample."""

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero the residual branch of a random share of the samples in training, and rescale the rest.

    Identity in eval mode and at ``drop_prob=0``. The zoo's ResNet gives block ``i`` of
    ``n`` the rate ``drop_path_rate * i / (n - 1)``, timm's linear rule.

    Args:
        drop_prob: Probability of dropping a sample's branch.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drop whole samples of the branch's output.

        Args:
            x: The residual branch's output ``(N, ...)``.

        Returns:
            `x` with dropped samples zeroed and kept ones divided by the keep probability.
        """
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = [x.shape[0]] + [1] * (x.ndim - 1)  # a list, not a tuple sum: TorchScript compiles it
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        """Show the drop probability in the model's repr.

        Returns:
            ``drop_prob=...``.
        """
        return f"drop_prob={self.drop_prob:.3f}"
