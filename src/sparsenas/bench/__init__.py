"""`sparsenas bench`: how fast K sub-networks train four ways, side by side in one process.

On Fashion-MNIST-shaped data with a parent (LeNet-300-100 by default; any registered model, e.g.
`--model resnet20`), for each node sparsity and population size K:

  (a) what a user writes today: each sub-network alone, the full-size parent with its mask
      multiplied in after every step (BatchNorm's scale, shift and running statistics too),
      batches from a torch DataLoader;
  (b) the same, with batches sliced from in-memory tensors;
  (c) each sub-network alone, compacted to its smaller dense network (sparsenas with K = 1);
  (d) the K compacted sub-networks as one population (stacked weights: batched GEMMs, one grouped
      convolution per conv layer).

Each method trains its sub-networks for the same number of steps on the same minibatches from the
same init; (a) to (c) do not depend on K, so they are timed on a few sub-networks and their rate is
reused for every K. Throughput is sub-network-epochs per second (one epoch = one pass over the
training split). Useful GFLOP/s counts the compacted sub-networks' training FLOPs of their Linear
and Conv2d layers for every method (the masked methods do more arithmetic, on zeros): per sample, 2
FLOPs per multiply-add forward, the same for the weight gradients, and the same again for the input
gradients of every layer but those reading the input (which need none). The peak is torch.mm's
best on square matrices, measured in the same run. Peak memory is the process's peak resident memory during a method (on a GPU: peak allocated),
and how much of it the method added. Finally (d)'s weights and BatchNorm statistics, and its
eval-mode logits, are compared with (a)'s in float64. The result names the model, the cores and
torch threads, the date and the load average (other processes make absolute rates unstable; the
ratios between methods of one run are what to read).

A library: `run_bench` measures and returns plain numbers, `to_markdown` renders them; the command
line (`cli/parsers.py`, `cli/commands.py`) parses and checks the flags. Inside: `methods.py` the four ways to train and how one
is timed, `flops.py` the useful work and torch.mm's peak, `run.py` the sweep and the float64 check,
`table.py` the markdown.
"""

from .flops import mm_peak_gflops, train_flops_per_sample
from .methods import BATCH, METHODS
from .run import Row, bench_data, equality_check, run_bench
from .table import to_markdown

__all__ = [
    "BATCH",
    "METHODS",
    "Row",
    "bench_data",
    "equality_check",
    "mm_peak_gflops",
    "run_bench",
    "to_markdown",
    "train_flops_per_sample",
]
