# d2l 0.17, 3.2-3.3 Linear regression with synthetic_data, linreg, squared_loss, sgd, load_array
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch
from torch import nn

from cnnlab import d2l

# %%
torch.manual_seed(2)
true_w, true_b = torch.tensor([2, -3.4]), 4.2
features, labels = d2l.synthetic_data(true_w, true_b, 1000)
features.shape, labels.shape

# %%
w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
lr, num_epochs, batch_size = 0.03, 3, 10
for epoch in range(num_epochs):
    for X, y in d2l.load_array((features, labels), batch_size):
        l = d2l.squared_loss(d2l.linreg(X, w, b), y)
        l.sum().backward()
        d2l.sgd([w, b], lr, batch_size)
    with torch.no_grad():
        train_l = d2l.squared_loss(d2l.linreg(features, w, b), labels)
        print(f'epoch {epoch + 1}, loss {float(train_l.mean()):f}')

# %%
net = nn.Sequential(nn.Linear(2, 1))
trainer = torch.optim.SGD(net.parameters(), lr=0.03)
loss = nn.MSELoss()
for epoch in range(3):
    for X, y in d2l.load_array((features, labels), 10):
        trainer.zero_grad()
        loss(net(X), y).backward()
        trainer.step()
    print(f'epoch {epoch + 1}, loss {loss(net(features), labels):f}')
