"""A small transformer language model (about 10M parameters) on random tokens

Token embedding (vocabulary 8192, width 320), learned positions, 4 pre-norm transformer
encoder layers with a causal mask (5 heads, feed-forward 1280), a final LayerNorm and an
untied output head; cross-entropy of the next token on a fixed random batch of 8 sequences
of 64 tokens, AdamW (lr 3e-4). Dropout is off, so every forward is deterministic. The
environment variable OPTDBG_BENCH_DEVICE (default cpu) chooses the device and
OPTDBG_BENCH_LM_LAYERS (default 4) the depth (the bench's --quick uses 1).
"""

import os

import torch
from torch import nn

device = os.environ.get("OPTDBG_BENCH_DEVICE", "cpu")
layers = int(os.environ.get("OPTDBG_BENCH_LM_LAYERS", "4"))
vocab, width, context, batch = 8192, 320, 64, 8


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(context, width)
        layer = nn.TransformerEncoderLayer(
            width, 5, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        mask = nn.Transformer.generate_square_subsequent_mask(idx.shape[1], device=idx.device)
        x = self.tokens(idx) + self.positions(pos)
        return self.head(self.norm(self.blocks(x, mask=mask, is_causal=True)))


model = TinyLM().to(device)
tokens = torch.randint(0, vocab, (batch, context + 1), device=device)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)


def forward():
    logits = model(tokens[:, :-1])
    return nn.functional.cross_entropy(logits.reshape(-1, vocab), tokens[:, 1:].reshape(-1))
