# 3.2-3.5 Linear regression: synthetic data, the scratch model and its SGD, the concise model
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch

from cnnlab import d2l

# %%
torch.manual_seed(1)
true_w, true_b = d2l.tensor([2, -3.4]), 4.2
data = d2l.SyntheticRegressionData(w=true_w, b=true_b)
print('first example:', data.X[0], data.y[0])

# %%
features, targets = next(iter(data.train_dataloader()))
features.shape, targets.shape, len(data.train_dataloader())

# %%
scratch = d2l.LinearRegressionScratch(2, lr=0.03)
d2l.Trainer(max_epochs=3).fit(scratch, data)
with torch.no_grad():
    print(f'w error: {data.w - d2l.reshape(scratch.w, data.w.shape)}')
    print(f'b error: {data.b - scratch.b}')

# %%
torch.manual_seed(1)
data = d2l.SyntheticRegressionData(w=true_w, b=true_b)
concise = d2l.LinearRegression(lr=0.03)
d2l.Trainer(max_epochs=3).fit(concise, data)
w, b = concise.get_w_b()
print(f'w error: {data.w - d2l.reshape(w, data.w.shape)}')
print(f'b error: {data.b - b}')
