"""PyTorch reference for `deno task bench`: the same model, batch and samples as Shoal's row.

usage: python3 tools/torch_reference.py mlp|conv BATCH SAMPLES
prints one JSON line with samples_per_s (one thread, one pass over SAMPLES Fashion-MNIST images).
"""
import gzip, json, os, sys, time

# One thread means one BLAS thread too: torch.set_num_threads does not reach the OpenBLAS that Debian's
# torch and numpy use, which otherwise runs every matrix product on all cores. Set before they load.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np
import torch

kind, batch, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
torch.set_num_threads(1)
d = "/usr/share/datasets/fashion-mnist/"
x = np.frombuffer(gzip.open(d + "train-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
x = x.reshape(-1, 784)[:samples].astype(np.float32) / 255
y = np.frombuffer(gzip.open(d + "train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)[:samples].astype(np.int64)
X, Y = torch.from_numpy(x), torch.from_numpy(y)
nn = torch.nn
if kind == "mlp":
    m = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.BatchNorm1d(512), nn.Dropout(0.3),
                      nn.Linear(512, 256), nn.ReLU(), nn.BatchNorm1d(256), nn.Dropout(0.3),
                      nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
else:
    X = X.reshape(-1, 1, 28, 28)
    m = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
opt, lf = torch.optim.Adam(m.parameters(), 1e-3), nn.CrossEntropyLoss()
t = time.perf_counter()
for i in range(0, samples, batch):
    opt.zero_grad()
    lf(m(X[i:i + batch]), Y[i:i + batch]).backward()
    opt.step()
print(json.dumps({"samples_per_s": round(samples / (time.perf_counter() - t))}))
