# 5.2 and 5.6 Multilayer perceptrons and dropout
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import torch
from torch import nn

from cnnlab import d2l


# %%
class TwoLayers(d2l.Classifier):
    def __init__(self, num_outputs, num_hiddens, lr, dropout):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_hiddens), nn.ReLU(),
                                 nn.Dropout(dropout), nn.LazyLinear(num_outputs))


model = TwoLayers(num_outputs=10, num_hiddens=64, lr=0.1, dropout=0.5)
model(d2l.rand(2, 1, 28, 28)).shape

# %%
d2l.MLPScratch(num_inputs=784, num_outputs=10, num_hiddens=256, lr=0.1)(d2l.rand(3, 784)).shape

# %% [training]
data = d2l.FashionMNIST(batch_size=256)
trainer = d2l.Trainer(max_epochs=10)
trainer.fit(d2l.MLP(num_outputs=10, num_hiddens=256, lr=0.1), data)
trainer.fit(model, data)
