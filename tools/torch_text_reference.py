"""PyTorch reference for the text examples' bench part: the same models, batch and samples as Shoal's.

usage: python3 tools/torch_text_reference.py bilstm|transformer BATCH SAMPLES VOCABULARY MAX_LEN
prints one JSON line with samples_per_s (one thread, one pass over SAMPLES rows after a warm-up pass
of a few batches). The rows are random word ids and labels of the examples' shapes: the work per row
does not depend on the words.

bilstm (examples/text_classifier.ts): Embedding(V, 32) -> bidirectional LSTM(32), last states of both
directions concatenated -> Dropout(0.2) -> Linear(64, 1), binary cross-entropy, Adam 0.01.
transformer (examples/transformer_encoder.ts): token + position embeddings (32) -> attention with 2
heads of key size 32 (Keras's MultiHeadAttention: Q, K, V projections to 2x32, output back to 32) ->
Dropout(0.1), residual, LayerNorm(eps 1e-6) -> Linear(32, 32) relu -> Linear(32, 32) -> Dropout(0.1),
residual, LayerNorm -> mean over positions -> Dropout(0.1) -> Linear(32, 20) relu -> Dropout(0.1) ->
Linear(20, 2), cross-entropy, Adam 0.001.
"""
import json, os, sys, time

# One thread means one BLAS thread too: torch.set_num_threads does not reach the OpenBLAS that Debian's
# torch and numpy use, which otherwise runs every matrix product on all cores. Set before they load.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import torch

kind, batch, samples, vocab, max_len = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)
torch.set_num_threads(1)
nn = torch.nn
X = torch.randint(1, vocab, (samples, max_len))
Y = torch.randint(0, 2, (samples,))


class BiLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(vocab, 32)
        self.lstm = nn.LSTM(32, 32, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.2)
        self.dense = nn.Linear(64, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(self.embedding(x))
        return self.dense(self.dropout(torch.cat([h[0], h[1]], dim=1))).squeeze(1)


class Attention(nn.Module):
    """Keras's MultiHeadAttention(num_heads=2, key_dim=32) on a 32-wide input."""

    def __init__(self, dim=32, heads=2, key_dim=32):
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        self.q, self.k, self.v = (nn.Linear(dim, heads * key_dim) for _ in range(3))
        self.out = nn.Linear(heads * key_dim, dim)

    def forward(self, x):
        n, t, _ = x.shape
        split = lambda y: y.view(n, t, self.heads, self.key_dim).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        weights = torch.softmax(q @ k.transpose(-1, -2) / self.key_dim ** 0.5, dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(n, t, -1))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, 32), nn.Embedding(max_len, 32)
        self.attention = Attention()
        self.norm1, self.norm2 = nn.LayerNorm(32, eps=1e-6), nn.LayerNorm(32, eps=1e-6)
        self.ff = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
        self.drop1, self.drop2 = nn.Dropout(0.1), nn.Dropout(0.1)
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(32, 20), nn.ReLU(), nn.Dropout(0.1), nn.Linear(20, 2))

    def forward(self, x):
        h = self.tokens(x) + self.positions(torch.arange(x.shape[1]))
        h = self.norm1(h + self.drop1(self.attention(h)))
        h = self.norm2(h + self.drop2(self.ff(h)))
        return self.head(h.mean(dim=1))


if kind == "bilstm":
    model, loss_fn, lr, target = BiLSTM(), nn.BCEWithLogitsLoss(), 0.01, Y.float()
else:
    model, loss_fn, lr, target = Encoder(), nn.CrossEntropyLoss(), 0.001, Y
opt = torch.optim.Adam(model.parameters(), lr)


def step(i):
    opt.zero_grad()
    loss_fn(model(X[i:i + batch]), target[i:i + batch]).backward()
    opt.step()


for i in range(0, min(samples, 5 * batch), batch):
    step(i)
t = time.perf_counter()
for i in range(0, samples, batch):
    step(i)
print(json.dumps({"samples_per_s": round(samples / (time.perf_counter() - t))}))
