"""PyTorch DDP (gloo, localhost) reference for `deno task bench`: the chapter MLP or the conv net, the
global batch split over N processes, one thread each.

usage: python3 tools/torch_ddp_reference.py mlp|conv N GLOBAL_BATCH SAMPLES PORT
prints one JSON line with samples_per_s, measured after 10 warm-up steps.
"""
import gzip, json, os, sys, time

# One thread means one BLAS thread too: torch.set_num_threads does not reach the OpenBLAS that Debian's
# torch and numpy use, which otherwise runs every matrix product on all cores. Set before they load.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def model(kind):
    nn = torch.nn
    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.BatchNorm1d(512), nn.Dropout(0.3),
                             nn.Linear(512, 256), nn.ReLU(), nn.BatchNorm1d(256), nn.Dropout(0.3),
                             nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))


def run(rank, kind, n, batch, samples, port):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=n)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    d = "/usr/share/datasets/fashion-mnist/"
    x = np.frombuffer(gzip.open(d + "train-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
    x = torch.from_numpy(x.reshape(-1, 784)[:samples].astype(np.float32) / 255)
    if kind == "conv":
        x = x.reshape(-1, 1, 28, 28)
    y = np.frombuffer(gzip.open(d + "train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    y = torch.from_numpy(y[:samples].astype(np.int64))
    m = torch.nn.parallel.DistributedDataParallel(model(kind))
    opt, lf = torch.optim.Adam(m.parameters(), 1e-3), torch.nn.CrossEntropyLoss()
    b, t, s0 = batch // n, None, 0
    for i, s in enumerate(range(0, samples - batch + 1, batch)):
        if i == 10:
            dist.barrier()
            t, s0 = time.perf_counter(), s
        xb, yb = x[s + rank * b:s + (rank + 1) * b], y[s + rank * b:s + (rank + 1) * b]
        opt.zero_grad()
        lf(m(xb), yb).backward()
        opt.step()
    dist.barrier()
    dt = time.perf_counter() - t
    if rank == 0:
        print(json.dumps({"workers": n, "global_batch": batch, "samples_per_s": round((samples - s0) / dt)}))
    dist.destroy_process_group()


if __name__ == "__main__":
    kind, n, batch, samples, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    mp.spawn(run, args=(kind, n, batch, samples, port), nprocs=n)
