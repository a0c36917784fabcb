# 6.1-6.7 Builders' guide: modules, parameters, initialisation, lazy layers, custom layers,
# file I/O, devices (on a CPU)
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch
from torch import nn
from torch.nn import functional as F

from cnnlab import d2l

# %% 6.1 a Sequential of lazy layers
torch.manual_seed(0)
net = nn.Sequential(nn.LazyLinear(32), nn.ReLU(), nn.LazyLinear(4))
X = torch.rand(3, 12)
net(X).shape


# %% a module of our own, and a Sequential of our own
class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.LazyLinear(32)
        self.outer = nn.LazyLinear(4)

    def forward(self, X):
        return self.outer(F.relu(self.inner(X)))


class Chain(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)

    def forward(self, X):
        for layer in self.children():
            X = layer(X)
        return X


TwoLayer()(X).shape, Chain(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))(X).shape


# %% constant weights, control flow in forward, nesting
class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.fixed = torch.ones((16, 16)) / 16
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        X = F.relu(X @ self.fixed + 1)
        X = self.linear(X)
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


torch.manual_seed(0)
nested = nn.Sequential(Chain(nn.LazyLinear(16), nn.ReLU()), nn.LazyLinear(16), Constant())
nested(X).shape, bool(nested(X).detach().abs() <= 1)

# %% 6.2 parameter access
torch.manual_seed(0)
net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
net(X)
last = net[2]
(list(last.state_dict()), type(last.bias).__name__, last.bias.data.shape, last.weight.grad is None,
 [(name, p.shape) for name, p in net.named_parameters()])

# %% tied parameters
shared = nn.LazyLinear(8)
tied = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.LazyLinear(1))
tied(X)
tied[2].weight.data[0, 0] = 42
tied[2].weight[0, 0] == tied[4].weight[0, 0], len(list(tied.parameters()))

# %% 6.3 initialisation: built-in and our own
def init_normal(module):
    if type(module) == nn.Linear:
        nn.init.normal_(module.weight, mean=0, std=0.01)
        nn.init.zeros_(module.bias)


def init_constant(module):
    if type(module) == nn.Linear:
        nn.init.constant_(module.weight, 3)
        nn.init.zeros_(module.bias)


def init_odd(module):
    if type(module) == nn.Linear:
        nn.init.uniform_(module.weight, -4, 4)
        module.weight.data *= module.weight.data.abs() >= 2


torch.manual_seed(0)
net.apply(init_normal)
normal_w = net[0].weight.data[0].clone()
net.apply(init_constant)
constant_w = net[0].weight.data[0].clone()
net[0].apply(init_odd)
normal_w, constant_w, bool(((net[0].weight.abs() >= 2) | (net[0].weight == 0)).all())

# %% 6.4 lazy initialisation, and d2l.Module.apply_init
lazy = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
before = type(lazy[0].weight).__name__
lazy(torch.zeros(2, 5))
after = [p.shape for p in lazy.parameters()]


@d2l.add_to_class(d2l.Module)
def apply_init(self, inputs, init=None):
    self.forward(*inputs)
    if init is not None:
        self.net.apply(init)


class Small(d2l.Module):
    def __init__(self, num_outputs, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(num_outputs))


model = Small(num_outputs=3, lr=0.1)
model.apply_init([torch.zeros(2, 6)], init_constant)
before, after, model.net[1].weight.shape, float(model.net[3].weight.detach().sum())


# %% 6.5 custom layers
class Centered(nn.Module):
    def forward(self, X):
        return X - X.mean()


class Dense(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units))

    def forward(self, X):
        return F.relu(X @ self.weight.data + self.bias.data)


torch.manual_seed(0)
centered = nn.Sequential(nn.LazyLinear(32), Centered())
dense = Dense(5, 3)
(Centered()(torch.tensor([1.0, 2, 3, 6])), bool(centered(torch.rand(4, 8)).detach().mean().abs() < 1e-6),
 dense.weight.shape, dense(torch.rand(2, 5)).shape, nn.Sequential(Dense(8, 4), Dense(4, 1))(torch.rand(2, 8)).shape)

# %% 6.6 file I/O: tensors, lists, dicts, parameters
v = torch.arange(5)
torch.save(v, "v-file")
w = torch.zeros(5)
torch.save([v, w], "v-files")
torch.save({"v": v, "w": w}, "v-dict")
torch.load("v-file"), torch.load("v-files"), torch.load("v-dict")

# %%
torch.manual_seed(0)
mlp = TwoLayer()
Y = mlp(X)
torch.save(mlp.state_dict(), "two-layer.params")
copy = TwoLayer()
copy(X)
copy.load_state_dict(torch.load("two-layer.params"))
copy.eval()
torch.equal(copy(X), Y)

# %% 6.7 devices, on a CPU-only machine
d2l.cpu(), d2l.gpu(), d2l.gpu(1), d2l.num_gpus(), d2l.try_gpu(), d2l.try_gpu(10), d2l.try_all_gpus()

# %%
A = torch.ones(2, 3, device=d2l.try_gpu())
onto = nn.Sequential(nn.LazyLinear(1)).to(device=d2l.try_gpu())
onto(A)
A.device, onto[0].weight.data.device, torch.rand(2, 3, device=d2l.try_gpu(1)).device


# %% the chapter's Trainer methods that move batches and models to the first GPU
@d2l.add_to_class(d2l.Trainer)
def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):
    self.save_hyperparameters()
    self.gpus = [d2l.gpu(i) for i in range(min(num_gpus, d2l.num_gpus()))]


@d2l.add_to_class(d2l.Trainer)
def prepare_batch(self, batch):
    return [a.to(self.gpus[0]) for a in batch] if self.gpus else batch


@d2l.add_to_class(d2l.Trainer)
def prepare_model(self, model):
    model.trainer = self
    model.board.xlim = [0, self.max_epochs]
    if self.gpus:
        model.to(self.gpus[0])
    self.model = model


trainer = d2l.Trainer(max_epochs=2, num_gpus=1)
trainer.gpus, trainer.max_epochs

# %% [training]
data = d2l.SyntheticRegressionData(w=torch.tensor([1.5, -2.0]), b=0.5)
model = d2l.LinearRegression(lr=0.03)
trainer.fit(model, data)
model.net.weight.shape, model.net.weight.device
