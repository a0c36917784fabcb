# d2l 0.17, 5.1-5.6 Deep-learning computation: blocks, parameters, custom layers, file I/O,
# devices (on a CPU)
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch
from torch import nn
from torch.nn import functional as F

from cnnlab import d2l017 as d2l

# %% 5.1 blocks
torch.manual_seed(0)
X = torch.rand(2, 10)
seq = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 3))
seq(X).shape


# %%
class Hidden(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(10, 64)
        self.out = nn.Linear(64, 3)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))


class InOrder(nn.Module):
    def __init__(self, *args):
        super().__init__()
        for idx, module in enumerate(args):
            self._modules[str(idx)] = module

    def forward(self, X):
        for block in self._modules.values():
            X = block(X)
        return X


class Fixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.rand_weight = torch.full((10, 10), 0.1)
        self.linear = nn.Linear(10, 10)

    def forward(self, X):
        X = self.linear(F.relu(self.linear(X) @ self.rand_weight + 1))
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


torch.manual_seed(0)
chained = nn.Sequential(InOrder(nn.Linear(10, 10), nn.ReLU()), Fixed())
Hidden()(X).shape, InOrder(nn.Linear(10, 5), nn.ReLU())(X).shape, chained(X).shape

# %% 5.2 parameters: access, all at once, nested, initialisation, sharing
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
net(torch.rand(2, 4))
(list(net[2].state_dict()), net[2].bias.data.shape, [(n, p.shape) for n, p in net.named_parameters()],
 net.state_dict()["2.bias"].shape)


# %%
def init_constant(m):
    if type(m) == nn.Linear:
        nn.init.constant_(m.weight, 0.5)
        nn.init.zeros_(m.bias)


def init_xavier(m):
    if type(m) == nn.Linear:
        nn.init.xavier_uniform_(m.weight)


net.apply(init_constant)
net[0].apply(init_xavier)
shared = nn.Linear(8, 8)
tied = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.Linear(8, 1))
tied[2].weight.data[0, 0] = 7
net[2].weight.data[0], net[2].bias.data, bool(net[0].weight.abs().max() < 1), bool(tied[2].weight[0, 0] == tied[4].weight[0, 0])


# %% 5.4 custom layers
class Centered(nn.Module):
    def forward(self, X):
        return X - X.mean()


class Linear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units))

    def forward(self, X):
        return F.relu(torch.matmul(X, self.weight.data) + self.bias.data)


torch.manual_seed(0)
Centered()(torch.tensor([2.0, 4.0, 9.0])), Linear(4, 2).weight.shape, Linear(4, 2)(torch.rand(3, 4)).shape

# %% 5.5 file I/O
v = torch.arange(3)
torch.save(v, "v-file")
torch.save({"v": v, "w": torch.ones(2)}, "v-dict")
torch.manual_seed(0)
model = Hidden()
Y = model(X)
torch.save(model.state_dict(), "hidden.params")
clone = Hidden()
clone.load_state_dict(torch.load("hidden.params"))
clone.eval()
torch.load("v-file"), torch.load("v-dict"), torch.equal(clone(X), Y)

# %% 5.6 devices: the 0.17 functions on a CPU-only machine
torch.device("cpu"), d2l.try_gpu(), d2l.try_gpu(10), d2l.try_all_gpus(), torch.cuda.device_count()

# %%
A = torch.ones(2, 3, device=d2l.try_gpu())
on_device = nn.Sequential(nn.Linear(3, 1)).to(device=d2l.try_gpu())
A.device, on_device(A).device, on_device[0].weight.data.device
