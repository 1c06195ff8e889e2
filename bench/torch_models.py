"""PyTorch twins of the engine's benchmarked models and steps (docs/METHOD.md section 6).

The models, losses and optimizers mirror what bench/engine_bench.cc times, so that images per second
compare like with like. Needs Debian's /usr/bin/python3 (the interpreter that sees python3-torch).
"""

import torch
from torch import nn

MODELS = ("mlp", "lenet5")
STEPS = ("train", "causal", "eval")

IMAGE_SHAPE = (1, 28, 28)  # C, H, W of one Fashion-MNIST image
NUM_CLASSES = 10
LABEL_SMOOTHING = 0.1  # METHOD.md section 3: the loss everywhere
TRAIN_LR = 0.01  # training step: SGD with momentum
TRAIN_MOMENTUM = 0.9
COLLECT_LR = 1e-3  # causal step: plain SGD, METHOD.md section 3, step 1


def build_model(name):
    """Returns a fresh nn.Module for `name` ("mlp" or "lenet5"), input shape (B, 1, 28, 28).

    Raises ValueError for an unknown name.
    """
    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 40, bias=False), nn.ReLU(),
            nn.Linear(40, 20, bias=False), nn.ReLU(),
            nn.Linear(20, 10, bias=False))
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(800, 500), nn.ReLU(),
            nn.Linear(500, NUM_CLASSES))
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def _weight_layers(model):
    """The prunable layers (Linear and Conv2d), in forward order."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def prunable_weight_count(model):
    """Number of prunable weights (Linear/Conv2d `weight` elements): 32,360 for mlp, 430,500 for lenet5."""
    return sum(m.weight.numel() for m in _weight_layers(model))


def _layer_macs(name):
    """Multiply-accumulates per image of each weight layer's forward pass, in forward order."""
    if name == "mlp":
        return [784 * 40, 40 * 20, 20 * 10]
    if name == "lenet5":
        return [20 * 24 * 24 * (1 * 5 * 5),    # conv1: 20 output maps of 24x24
                50 * 8 * 8 * (20 * 5 * 5),     # conv2: 50 output maps of 8x8
                800 * 500, 500 * NUM_CLASSES]
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def flops_per_image(name, step):
    """Floating-point operations per image of one step (2 per multiply-accumulate).

    Counts only the weight layers (pooling, ReLU, loss and optimizer updates are negligible here).
    train = forward + weight gradients + input gradients of every layer but the first (which needs none);
    causal = train + the second forward pass on the same batch; eval = forward.
    Raises ValueError for an unknown model or step.
    """
    macs = _layer_macs(name)
    forward = 2 * sum(macs)
    train = forward + 2 * sum(macs) + 2 * sum(macs[1:])
    if step == "train":
        return train
    if step == "causal":
        return train + forward
    if step == "eval":
        return forward
    raise ValueError(f"unknown step {step!r}; expected one of {STEPS}")


def random_batch(batch, seed=0):
    """A fixed random batch: images N(0, 1) of shape (batch, 1, 28, 28) float32, labels uniform in [0, 10)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn((batch,) + IMAGE_SHAPE, generator=gen)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=gen)
    return images, labels


class TrainStep:
    """One training step per call: forward, cross-entropy (label smoothing 0.1), backward,
    SGD(lr 0.01, momentum 0.9) step, zero_grad. Returns the loss as a detached tensor."""

    def __init__(self, model, images, labels):
        self.model, self.images, self.labels = model.train(), images, labels
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=TRAIN_MOMENTUM)

    def __call__(self):
        loss = self.loss_fn(self.model(self.images), self.labels)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss.detach()


class CausalStep:
    """One causal-collection step per call (METHOD.md section 3, step 1): L0 = loss and backward, plain SGD
    (lr 1e-3, no momentum) on all parameters, L1 = loss again on the same batch without gradient, and
    delta_theta = w1 - w0 materialised for every Linear/Conv2d weight.

    Returns (L1 - L0 as a float, list of delta tensors shaped like the weights)."""

    def __init__(self, model, images, labels):
        self.model, self.images, self.labels = model.train(), images, labels
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=COLLECT_LR)
        self.weights = [m.weight for m in _weight_layers(model)]

    def __call__(self):
        loss0 = self.loss_fn(self.model(self.images), self.labels)
        loss0.backward()
        w0 = [w.detach().clone() for w in self.weights]
        self.optimizer.step()
        self.optimizer.zero_grad()
        with torch.no_grad():
            loss1 = self.loss_fn(self.model(self.images), self.labels)
            deltas = [w.detach() - before for w, before in zip(self.weights, w0)]
        return loss1.item() - loss0.item(), deltas


class EvalStep:
    """One evaluation per call: forward without gradient and argmax accuracy. Returns the accuracy in [0, 1]."""

    def __init__(self, model, images, labels):
        self.model, self.images, self.labels = model.eval(), images, labels

    def __call__(self):
        with torch.no_grad():
            logits = self.model(self.images)
            return (logits.argmax(dim=1) == self.labels).float().mean().item()


_STEP_CLASSES = {"train": TrainStep, "causal": CausalStep, "eval": EvalStep}


def make_step(model_name, step, batch, seed=0):
    """A ready-to-call step (TrainStep, CausalStep or EvalStep) on a fresh model and a fixed random batch.

    The model's initialisation and the batch are seeded by `seed`. Raises ValueError for an unknown model or
    step, or a batch below 1.
    """
    if step not in _STEP_CLASSES:
        raise ValueError(f"unknown step {step!r}; expected one of {STEPS}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    torch.manual_seed(seed)
    model = build_model(model_name)
    images, labels = random_batch(batch, seed)
    return _STEP_CLASSES[step](model, images, labels)
