# 2.2 Data preprocessing: a small CSV read with pandas, missing values, tensors
# ruff: noqa  (notebook cells: bare expressions are cell outputs)
# %%
import os

import pandas as pd
import torch

from cnnlab import d2l

# %% a tiny table of our own, written to a CSV file
os.makedirs("data", exist_ok=True)
csv_file = os.path.join("data", "bikes_tiny.csv")
with open(csv_file, "w") as f:
    f.write("Gears,Frame,Price\n")
    f.write("21,Steel,310\n")
    f.write("NA,Alu,455\n")
    f.write("7,NA,120\n")
    f.write("NA,NA,199\n")
table = pd.read_csv(csv_file)
print(table)

# %% missing values: indicator columns for categories, the mean for numbers
features, targets = table.iloc[:, 0:2], table.iloc[:, 2]
features = pd.get_dummies(features, dummy_na=True)
features = features.fillna(features.mean())
print(features)

# %% to tensors
X = torch.tensor(features.to_numpy(dtype=float))
y = torch.tensor(targets.to_numpy(dtype=float))
X, y, X.dtype, d2l.size(X)
