"""Tests of gcprune.torch.CausalPruner against a real gcprune-pruner: the collection step against an
independent computation, restoring the model, pruned weights held at 0 under SGD with momentum and Adam
(weights, gradients, optimizer state), fail-open and strict behaviour without a server, and recovery
when the pruner restarts between iterations."""

import copy
import threading
import time
import unittest
import warnings

import numpy as np
import torch
from torch import nn

import gcprune
import gcprune.torch as gtorch
import gcprune_test_support as support

torch.set_num_threads(1)


def small_net():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 5)
    )


def synthetic_batches(seed=0, n=256, batch=32):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=generator)
    y = (x.mean(dim=(1, 2, 3)) * 10).long().clamp(-2, 2) + 2
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def train_epoch(model, optimizer, batches):
    for x, y in batches:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


class CausalPrunerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = support.pruner_server()
        cls.address = cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def assert_pruned_state_is_zero(self, pruner, optimizer, state_keys):
        self.assertGreater(sum(int((m == 0).sum()) for m in pruner.masks.values()), 0)
        for name, param in pruner.prunable.items():
            pruned = pruner.masks[name] == 0
            self.assertEqual(int((param[pruned] != 0).sum()), 0, "%s: pruned weights revived" % name)
            if param.grad is not None:
                self.assertEqual(int((param.grad[pruned] != 0).sum()), 0, "%s: gradient" % name)
            for key in state_keys:
                buffer = optimizer.state[param][key]
                self.assertEqual(int((buffer[pruned] != 0).sum()), 0, "%s: optimizer state %s" % (name, key))

    def test_collection_step_matches_an_independent_computation_and_is_undone(self):
        torch.manual_seed(1)
        model = small_net()
        batches = synthetic_batches(1)
        steps = []
        pruner = gtorch.CausalPruner(
            model, None, address=self.address, target=0.5, iterations=2, seed=2, on_step=steps.append
        )
        reference = copy.deepcopy(model)
        before = copy.deepcopy(model.state_dict())
        record = pruner.prune(batches)
        self.assertFalse(record.skipped, record.reason)
        self.assertEqual(record.steps, len(batches))
        self.assertEqual(len(steps), len(batches))
        # The first step, recomputed: smoothed cross-entropy, plain SGD with lr 1e-3 over all parameters.
        x, y = batches[0]
        loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
        sgd = torch.optim.SGD(reference.parameters(), lr=1e-3)
        w0 = {n: p.detach().clone() for n, p in reference.named_parameters()}
        loss0 = loss_fn(reference(x), y)
        loss0.backward()
        sgd.step()
        with torch.no_grad():
            loss1 = loss_fn(reference(x), y)
        first = steps[0]
        self.assertEqual(first.iteration, 1)
        self.assertAlmostEqual(first.loss_before, float(loss0), places=6)
        self.assertAlmostEqual(first.loss_after, float(loss1), places=6)
        self.assertEqual(first.learning_rate, 1e-3)
        names = [n for n, _ in reference.named_parameters()]
        self.assertEqual([names[i] for i, _ in first.deltas], ["0.weight", "3.weight", "5.weight"])
        for index, values in first.deltas:
            name = names[index]
            expected = (dict(reference.named_parameters())[name].detach() - w0[name]).reshape(-1).numpy()
            np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-9, err_msg=name)
        # The collection is undone: every weight is back, masked; biases untouched.
        for name, value in model.state_dict().items():
            expected = before[name] * pruner.masks[name] if name in pruner.masks else before[name]
            torch.testing.assert_close(value, expected, rtol=0, atol=0, msg=name)
        self.assertAlmostEqual(record.sparsity, round(0.5 * 0.875 * pruner_size(pruner)) / pruner_size(pruner))
        pruner.close()

    def test_pruned_weights_stay_zero_under_sgd_with_momentum(self):
        torch.manual_seed(3)
        model = small_net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
        batches = synthetic_batches(3)
        train_epoch(model, optimizer, batches)  # momentum buffers are non-zero everywhere before pruning
        pruner = gtorch.CausalPruner(model, optimizer, address=self.address, target=0.8, iterations=2, seed=4, start_epoch=0)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)  # wraps optimizer.step
        for epoch in range(4):
            record = pruner.epoch_end(epoch, batches)
            if record is not None:
                self.assertFalse(record.skipped, record.reason)
                self.assert_pruned_state_is_zero(pruner, optimizer, ["momentum_buffer"])
            weights = {n: p.detach().clone() for n, p in model.named_parameters()}
            train_epoch(model, optimizer, batches)
            scheduler.step()
            self.assert_pruned_state_is_zero(pruner, optimizer, ["momentum_buffer"])
            # Training does go on for the kept weights.
            for name, param in pruner.prunable.items():
                kept = pruner.masks[name] != 0
                self.assertTrue(bool((param[kept] != weights[name][kept]).any()), name)
        self.assertTrue(pruner.finished)
        self.assertEqual(pruner.status, "connected")
        self.assertAlmostEqual(pruner.sparsity, round(0.8 * pruner_size(pruner)) / pruner_size(pruner))
        pruner.close()
        self.assertEqual(pruner.status, "closed")

    def test_adam_moments_of_pruned_weights_are_zero(self):
        torch.manual_seed(5)
        model = small_net()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
        batches = synthetic_batches(5)
        train_epoch(model, optimizer, batches)
        with gtorch.CausalPruner(model, optimizer, address=self.address, target=0.6, iterations=1) as pruner:
            self.assertFalse(pruner.prune(batches).skipped)
            for _ in range(2):
                train_epoch(model, optimizer, batches)
                self.assert_pruned_state_is_zero(pruner, optimizer, ["exp_avg", "exp_avg_sq"])

    def test_bfloat16_deltas(self):
        torch.manual_seed(6)
        model = small_net()
        with gtorch.CausalPruner(model, None, address=self.address, target=0.5, iterations=1, encoding="bfloat16") as pruner:
            record = pruner.prune(synthetic_batches(6))
            self.assertFalse(record.skipped, record.reason)
            self.assertEqual(record.pruned, round(0.5 * pruner_size(pruner)))
            self.assertTrue(record.final)

    def test_magnitude_method_prunes_the_smallest_weights(self):
        torch.manual_seed(7)
        model = small_net()
        steps = []
        with gtorch.CausalPruner(model, None, address=self.address, method="magnitude-global", target=0.6,
                                 iterations=1, on_step=steps.append) as pruner:
            weights = np.concatenate([p.detach().reshape(-1).numpy() for p in pruner.prunable.values()])
            record = pruner.prune(synthetic_batches(7))
            self.assertFalse(record.skipped, record.reason)
            self.assertEqual(steps, [])  # no collection steps for a magnitude method
            kept = np.concatenate([m.reshape(-1).numpy() for m in pruner.masks.values()]) != 0
        count = round(0.6 * weights.size)
        self.assertEqual(record.pruned, count)
        self.assertLessEqual(np.abs(weights[~kept]).max(), np.abs(weights[kept]).min())


def pruner_size(pruner):
    return sum(p.numel() for p in pruner.prunable.values())


class FailOpenTest(unittest.TestCase):
    def test_training_goes_on_without_a_server(self):
        torch.manual_seed(7)
        model = small_net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        batches = synthetic_batches(7)
        pruner = gtorch.CausalPruner(
            model, optimizer, address="127.0.0.1:%d" % support.unused_port(), target=0.5, iterations=2,
            connect_timeout=0.5,
        )
        before = copy.deepcopy(model.state_dict())
        with self.assertWarnsRegex(gtorch.PrunerWarning, "iteration 1 skipped, training goes on"):
            record = pruner.epoch_end(0, batches)
        self.assertTrue(record.skipped)
        self.assertIn("127.0.0.1", record.reason)
        self.assertEqual(pruner.status, "disconnected")
        self.assertTrue(pruner.last_error)
        self.assertEqual(pruner.sparsity, 0.0)
        for name, value in model.state_dict().items():
            torch.testing.assert_close(value, before[name], rtol=0, atol=0)
        train_epoch(model, optimizer, batches)  # the loop goes on
        self.assertFalse(pruner.finished)
        pruner.close(timeout=2)

    def test_strict_raises_without_a_server(self):
        model = small_net()
        pruner = gtorch.CausalPruner(
            model, None, address="127.0.0.1:%d" % support.unused_port(), strict=True, connect_timeout=0.5
        )
        with self.assertRaises(gcprune.UnavailableError) as caught:
            pruner.prune(synthetic_batches(8))
        self.assertIn("127.0.0.1", str(caught.exception))
        pruner.close(timeout=2)

    def test_pruner_restarts_between_and_during_iterations(self):
        torch.manual_seed(9)
        model = small_net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        batches = synthetic_batches(9)
        with support.pruner_server() as server:
            pruner = gtorch.CausalPruner(
                model, optimizer, address=server.address, target=0.75, iterations=3, seed=10,
                connect_timeout=1.0, mask_timeout=60, reconnect_backoff=(0.05, 0.5), max_reconnect_backoff_ms=500,
            )
            first = pruner.epoch_end(0, batches)
            self.assertFalse(first.skipped, first.reason)
            # Down before a pruning epoch: the epoch is skipped, training goes on.
            port = server.port
            server.stop()
            wait_for(lambda: pruner.status == "disconnected")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                skipped = pruner.epoch_end(1, batches)
            self.assertTrue(skipped.skipped)
            self.assertEqual(skipped.iteration, 2)
            self.assertTrue(any(issubclass(w.category, gtorch.PrunerWarning) for w in caught))
            self.assertEqual(pruner.sparsity, first.sparsity)
            # Back: the skipped iteration is made up at the next pruning epoch.
            server.start(port=port)
            wait_for(lambda: pruner.status == "connected")
            second = pruner.epoch_end(2, batches)
            self.assertFalse(second.skipped, second.reason)
            self.assertEqual(second.iteration, 2)
            # Down during the collection and back within the grace period: steps are resent, nothing lost.
            restarter = threading.Timer(1.0, lambda: server.start(port=port))
            original_collect = pruner.collect_step

            def collect_and_stop(batch):
                if pruner._collect_steps == 2:
                    server.stop()
                    restarter.start()
                return original_collect(batch)

            pruner.collect_step = collect_and_stop
            third = pruner.epoch_end(3, batches)
            restarter.join()
            self.assertFalse(third.skipped, third.reason)
            self.assertEqual(third.iteration, 3)
            self.assertEqual(third.steps, len(batches))
            self.assertTrue(pruner.finished)
            self.assertEqual(third.pruned, round(0.75 * pruner_size(pruner)))
            self.assertEqual([r.skipped for r in pruner.history], [False, True, False, False])
            self.assertGreaterEqual(pruner._sender.reconnects, 2)
            client = gcprune.PrunerClient(server.address)
            report = client.get_report(pruner.session_id)
            self.assertEqual([r.num_samples for r in report.iterations], [len(batches)] * 3)
            client.close()
            pruner.close()


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.0f s" % timeout)
        time.sleep(0.02)


if __name__ == "__main__":
    support.main()
