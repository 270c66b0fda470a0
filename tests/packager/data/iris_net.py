"""A tiny PyTorch classifier for iris, importable on both sides of the MLflow import tests.

MLflow's pickle format saves a whole module with ``torch.save``, which pickles the
module's class by reference (``iris_net.IrisNet``): whoever unpickles it must be able
to import this file as ``iris_net``. mlflow_save.py finds it beside itself (its folder
is ``sys.path[0]``) and hands it to MLflow as ``code_paths``; the tests in the dev venv
put this folder on ``sys.path``.
"""

import torch


class IrisNet(torch.nn.Module):
    """Four measurements in, three class probabilities out."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.out(torch.relu(self.hidden(x))), dim=1)


def trained(features: torch.Tensor, labels: torch.Tensor, steps: int = 300) -> IrisNet:
    """An IrisNet fitted for a few hundred full-batch Adam steps from a fixed seed."""
    torch.manual_seed(0)
    net = IrisNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(torch.log(net(features)), labels)
        loss.backward()
        optimizer.step()
    return net.eval()
