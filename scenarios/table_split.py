"""The lecture's 12-row table: CSV, Dataset and DataLoader

table_split.csv holds 12 rows of x1, x2, y. A Dataset reads it, a
DataLoader feeds it: rows 0-2 train, 3-5 validate, 6-8 test, and 9-11
have no y (they are what the model is for). The model is
x @ weight + bias with MSE loss and SGD. Press i a few times, then v:
evaluate reports the validation MSE (the lecture's worked example:
predictions 8, 3, 5 against y 7, 3, 3 give 5/3). test_mse() and
predict() are there for the end.
"""

import csv
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

lr = 0.01
batch_size = 3


class TableDataset(Dataset):
    """The rows of the CSV whose index is in `rows`: (x1, x2) and y as float tensors."""

    def __init__(self, path, rows):
        with open(path, newline="", encoding="utf-8") as f:
            table = [r for r in csv.DictReader(f) if int(r["row"]) in rows]
        self.x = torch.tensor([[float(r["x1"]), float(r["x2"])] for r in table])
        self.y = torch.tensor([[float(r["y"])] if r["y"] else [float("nan")] for r in table])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


table = Path(__file__).with_suffix(".csv")
train_set = TableDataset(table, range(0, 3))
validation_set = TableDataset(table, range(3, 6))
test_set = TableDataset(table, range(6, 9))
unlabeled_set = TableDataset(table, range(9, 12))

data = DataLoader(train_set, batch_size=batch_size)
test_data = DataLoader(validation_set, batch_size=batch_size)

weight = torch.randn(2, 1, requires_grad=True)
bias = torch.zeros(1, requires_grad=True)


def model(x):
    return x @ weight + bias


loss_fn = torch.nn.MSELoss()
optimizer = torch.optim.SGD([weight, bias], lr=lr)


def test_mse():
    """The MSE on the test rows 6-8: look at it once, at the end."""
    with torch.no_grad():
        return loss_fn(model(test_set.x), test_set.y).item()


def predict():
    """Predictions for rows 9-11, which have no y."""
    with torch.no_grad():
        return model(unlabeled_set.x).flatten().tolist()
