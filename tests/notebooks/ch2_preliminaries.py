# 2.1 and 2.3-2.7 Preliminaries: tensors, linear algebra, calculus and d2l.plot, autograd,
# probability, looking things up
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch
from torch.distributions.multinomial import Multinomial

from cnnlab import d2l

# %% 2.1 tensors: shapes, creation
v = torch.arange(10, dtype=torch.float32)
m = v.reshape(-1, 5)
v.numel(), v.shape, m.shape, torch.zeros((2, 3, 1)).shape, torch.ones((2, 2)).sum()

# %% elementwise operations, concatenation, comparison
a = torch.tensor([[2.0, 0.5, 3], [1, 4, 1]])
b = torch.tensor([[1.0, 1, 1], [2, 2, 2]])
a + b, a ** b, torch.exp(b[0]), torch.cat((a, b), dim=0).shape, torch.cat((a, b), dim=1).shape, a > b

# %% broadcasting, indexing and slicing, saving memory, conversion
col, row = torch.arange(4).reshape((4, 1)), torch.arange(3).reshape((1, 3))
before = id(a)
a[:] = a * 10
a[0, 2] = -1
col + row, m[-1], m[:, 1:3], id(a) == before, a, type(a.numpy()).__name__, torch.tensor([2.5]).item()

# %% the book's tensor aliases reached through d2l
d2l.reduce_sum(d2l.ones(2, 3)), d2l.reshape(d2l.arange(6), (3, 2)), d2l.float32, d2l.size(m)

# %% 2.3 linear algebra: transpose, reductions, products, norms
A = torch.arange(6, dtype=torch.float32).reshape(2, 3)
x = torch.tensor([1.0, -2.0, 2.0])
B = torch.tensor([[1.0, 2, 3], [2, 0, 4], [3, 4, 5]])
A.T, torch.equal(B, B.T), A.sum(axis=0), A.sum(axis=1, keepdims=True), A.mean(), A.cumsum(axis=0)

# %%
torch.dot(x, x), torch.mv(A, x), torch.mm(A, B), torch.norm(x), torch.abs(x).sum(), torch.norm(A)

# %% 2.4 calculus: a difference quotient approaching the derivative
def g(x):
    return x ** 3 - 2 * x


for k in range(1, 5):
    step = 10.0 ** -k
    print(f"step {step:.4f}: slope {(g(1 + step) - g(1)) / step:.5f}")

# %% d2l.plot: a function and its tangent at x=1
d2l.use_svg_display()
d2l.set_figsize((4, 3))
xs = torch.arange(-1.5, 1.5, 0.05)
d2l.plot(xs, [g(xs), xs - 2], "x", "g(x)", legend=["g(x)", "tangent at x=1"])
axes = d2l.plt.gca()
axes.get_xlabel(), axes.get_ylabel(), [t.get_text() for t in axes.get_legend().get_texts()], len(axes.lines)

# %% d2l.plot with one array, a log scale, and set_axes on axes of our own
fig, ax = d2l.plt.subplots()
d2l.plot(torch.arange(1.0, 6.0) ** 2, yscale="log", axes=ax)
d2l.set_axes(ax, "i", "i squared", [0, 5], [1, 30], "linear", "log", ["squares"])
ax.get_yscale(), ax.get_xlim(), ax.get_ylim(), ax.get_ylabel(), len(ax.lines)

# %% 2.5 automatic differentiation
x = torch.arange(4.0, requires_grad=True)
y = (x * x).sum() * 3
y.backward()
first = x.grad.clone()
x.grad.zero_()
(x ** 3).backward(gradient=torch.ones(len(x)))
first, x.grad.clone(), torch.equal(first, 6 * x.detach())

# %% detaching, and gradients through Python control flow
x.grad.zero_()
y = x * x
u = y.detach()
(u * x).sum().backward()


def halve_until_small(a):
    while a.norm() > 1:
        a = a / 2
    return a if a.sum() > 0 else -a


x.grad, torch.equal(x.grad, u), y.requires_grad, u.requires_grad

# %%
z = torch.tensor([3.0, 4.0, 12.0], requires_grad=True)
out = halve_until_small(z)
out.sum().backward()
out, z.grad

# %% 2.6 probability: sampling from a multinomial, estimated frequencies
torch.manual_seed(0)
fair = torch.ones(6) / 6
draws = Multinomial(1000, fair).sample()
draws, draws / 1000, draws.sum()

# %% running estimates, plotted with d2l.set_figsize and d2l.plt
torch.manual_seed(0)
counts = Multinomial(1, fair).sample((300,))
estimates = counts.cumsum(dim=0) / counts.cumsum(dim=0).sum(dim=1, keepdims=True)
d2l.set_figsize((4.5, 3.5))
d2l.plt.figure()
for i in range(6):
    d2l.plt.plot(estimates[:, i].numpy(), label=f"P(die={i + 1})")
d2l.plt.axhline(y=1 / 6, color="black", linestyle="dashed")
d2l.plt.gca().set_xlabel("groups of experiments")
d2l.plt.legend()
estimates[-1], len(d2l.plt.gca().lines)

# %% 2.7 looking things up
"Multinomial" in dir(torch.distributions), [n for n in dir(torch.distributions) if n.startswith("Bern")]

# %%
help(torch.ones)
