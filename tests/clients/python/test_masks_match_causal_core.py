"""The masks that gcprune.torch.CausalPruner receives through a real pruner server and applies to the model
equal, bit for bit, the masks that the C++ causal core computes when the same recorded steps are replayed
into it directly (gcprune_replay_samples), for float32 and bfloat16 deltas over three iterations."""

import os
import struct
import subprocess
import tempfile
import unittest

import numpy as np
import torch
from torch import nn

import gcprune_test_support as support
import gcprune.torch as gtorch
from gcprune import wire

torch.set_num_threads(1)

TARGET, ITERATIONS, SEED = 0.7, 3, 11


def conv_net():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 24), nn.ReLU(),
        nn.Linear(24, 4),
    )


class Recorder:
    """Keeps every streamed step and the model's masks after every iteration, in the replay format."""

    def __init__(self, pruner_layout, encoding):
        self.layout = pruner_layout
        self.encoding = wire.parse_encoding(encoding)
        self.steps = bytearray()
        self.masks = []
        self.next_step = 0

    def on_step(self, step):
        deltas = [values for _, values in step.decoded_deltas()]
        flat = wire.flatten_all(deltas).astype(np.float32)
        # What the server reads: the deltas after the wire encoding.
        flat = wire.decode(wire.encode(flat, self.encoding), self.encoding)
        self.steps += struct.pack("<iqddd", 1, self.next_step, step.loss_before, step.loss_after, step.learning_rate)
        self.next_step += 1
        self.steps += flat.astype("<f4").tobytes()

    def on_masks(self, masks):
        self.steps += struct.pack("<i", 2)
        self.masks.append(masks.flat().copy())


class MasksMatchCausalCoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = support.pruner_server()
        cls.address = cls.server.start()
        cls.replay = support.binary("GCPRUNE_REPLAY_BIN")

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def run_case(self, encoding):
        torch.manual_seed(12)
        model = conv_net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        generator = torch.Generator().manual_seed(13)
        x = torch.randn(384, 1, 10, 10, generator=generator)
        y = torch.randint(0, 4, (384,), generator=generator)
        batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 384, 32)]
        recorder = None
        pruner = gtorch.CausalPruner(
            model, optimizer, address=self.address, method="causal-v2", target=TARGET, iterations=ITERATIONS,
            seed=SEED, encoding=encoding, on_step=lambda s: recorder.on_step(s), on_masks=lambda m: recorder.on_masks(m),
        )
        recorder = Recorder(pruner.layout, encoding)
        for epoch in range(ITERATIONS):
            for xb, yb in batches:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
                optimizer.step()
            record = pruner.epoch_end(epoch, batches)
            self.assertFalse(record.skipped, record.reason)
            # The applied masks are what the model holds: pruned weights are 0.
            applied = np.concatenate([m.reshape(-1).numpy() for m in pruner.masks.values()])
            np.testing.assert_array_equal(applied, recorder.masks[-1])
            weights = np.concatenate([p.detach().reshape(-1).numpy() for p in pruner.prunable.values()])
            self.assertTrue(np.all(weights[applied == 0] == 0))
        self.assertTrue(pruner.finished)
        pruner.close()

        with tempfile.TemporaryDirectory() as tmp:
            paths = {name: os.path.join(tmp, name) for name in ("layout", "config", "steps", "out")}
            with open(paths["layout"], "w") as f:
                for t in pruner.layout.tensors:
                    f.write("%s\t%s\t%d\n" % (t.name, ",".join(str(d) for d in t.shape), int(t.prunable)))
            with open(paths["config"], "w") as f:
                f.write("method=causal-v2\nschedule.target_sparsity=%r\nschedule.iterations=%d\nseed=%d\n"
                        % (TARGET, ITERATIONS, SEED))
            with open(paths["steps"], "wb") as f:
                f.write(bytes(recorder.steps))
            done = subprocess.run([self.replay, paths["layout"], paths["config"], paths["steps"], paths["out"]],
                                  capture_output=True, text=True)
            self.assertEqual(done.returncode, 0, done.stderr)
            reference = np.fromfile(paths["out"], dtype=np.uint8)
        n = recorder.masks[0].size
        self.assertEqual(reference.size, ITERATIONS * n)
        for j in range(ITERATIONS):
            with self.subTest(iteration=j + 1):
                np.testing.assert_array_equal(recorder.masks[j], reference[j * n : (j + 1) * n])
        # The schedule is met exactly (cumulative count rule): round(s(j) * N) pruned after iteration j.
        for j, mask in enumerate(recorder.masks, start=1):
            s = TARGET * (1 - (1 - j / ITERATIONS) ** 3)
            self.assertEqual(int((mask == 0).sum()), round(s * n))

    def test_float32_deltas(self):
        self.run_case("float32")

    def test_bfloat16_deltas(self):
        self.run_case("bfloat16")


if __name__ == "__main__":
    support.main()
