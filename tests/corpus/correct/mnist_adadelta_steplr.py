"""pytorch/examples mnist: two convolutions, dropout, log_softmax and F.nll_loss, Adadelta
(lr 1.0) with StepLR(step_size=1, gamma=0.7) stepped per epoch. Synthetic 28 x 28 digits
(datasets cannot be downloaded here), small batches so the suite stays fast."""
# corpus: ops="f b s z" repeat=16

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

gen = torch.Generator().manual_seed(0)
labels = torch.randint(0, 10, (128,), generator=gen)
patterns = torch.rand(10, 28, 28, generator=gen)
images = ((patterns[labels] + 0.5 * torch.rand(128, 28, 28, generator=gen)) - 0.1307) / 0.3081
data = DataLoader(TensorDataset(images.unsqueeze(1), labels), batch_size=16, shuffle=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


model = Net()
loss_fn = F.nll_loss
optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
scheduler_every = "epoch"
