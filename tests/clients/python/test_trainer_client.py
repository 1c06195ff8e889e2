"""Tests of gcprune.TrainerClient against real gcprune-trainer and gcprune-pruner servers: a small MLP run
on Fashion-MNIST followed to its end through WatchRun, its report, idempotent creation, resumed watching,
cancellation and errors with their status codes."""

import os
import unittest

import grpc

import gcprune
import gcprune_test_support as support
from gcprune import trainer
from gcprune._proto import trainer_pb2

DATA = "/usr/share/datasets/fashion-mnist"


def phase(epochs):
    return {"epochs": epochs, "batchSize": 64,
            "optimizer": {"kind": "OPTIMIZER_KIND_SGD", "learningRate": 0.01, "momentum": 0.9}}


def small_spec(pruner_address, epochs=1):
    return {
        "model": {"preset": "mlp"},
        "data": {"name": "fashion-mnist", "trainSubset": 512, "testSubset": 256},
        "pretrain": phase(epochs), "train": phase(1), "finetune": phase(1),
        "collection": {"epochs": 1, "batchSize": 64},
        "seed": 7,
        "method": {"method": "METHOD_CAUSAL_V2", "schedule": {"targetSparsity": 0.5, "iterations": 2}},
        "pruner": {"address": pruner_address},
        "label": "python client test",
    }


@unittest.skipUnless(os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")), "no Fashion-MNIST")
class TrainerClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pruner = support.pruner_server()
        cls.pruner_address = cls.pruner.start()
        cls.trainer = support.trainer_server()
        cls.client = gcprune.TrainerClient(cls.trainer.start(), timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.trainer.close()
        cls.pruner.close()

    def test_run_to_the_end(self):
        self.assertEqual(self.client.health(), "SERVING")
        run = self.client.create_run(small_spec(self.pruner_address), request_id="python-test-run")
        self.assertTrue(run.run_id)
        self.assertEqual(self.client.create_run(small_spec(self.pruner_address), request_id="python-test-run").run_id, run.run_id)
        events = []
        final = self.client.wait_run(run.run_id, on_event=events.append, timeout=240)
        self.assertEqual(final.state, trainer_pb2.RUN_STATE_SUCCEEDED, final.error_message)
        self.assertTrue(trainer.is_terminal(final.state))
        self.assertEqual([e.sequence for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(events[-1].WhichOneof("event"), "finished")
        applied = [e.masks_applied for e in events if e.WhichOneof("event") == "masks_applied"]
        self.assertEqual([m.iteration for m in applied], [1, 2])
        self.assertEqual(applied[-1].achieved_sparsity, 0.5)  # round(0.5 * 32360) of the MLP's weights
        report = self.client.get_run_report(run.run_id)
        self.assertEqual(report.state, trainer_pb2.RUN_STATE_SUCCEEDED)
        self.assertEqual(len(report.iterations), 2)
        self.assertEqual(report.prunable_weights, 32360)
        self.assertEqual(report.iterations[1].achieved_sparsity, 0.5)
        self.assertTrue(report.pruner_session_id)
        # The pruner's session of the run agrees.
        with gcprune.PrunerClient(self.pruner_address) as pruner:
            self.assertEqual(pruner.get_masks(report.pruner_session_id).pruned, 16180)
        # Watching again from a sequence replays only the later events.
        replay = list(self.client.watch_run(run.run_id, after_sequence=events[-3].sequence))
        self.assertEqual([e.sequence for e in replay], [e.sequence for e in events[-2:]])
        self.assertIn(run.run_id, [r.run_id for r in self.client.list_runs()])
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.cancel_run(run.run_id)
        self.assertEqual(caught.exception.code, grpc.StatusCode.FAILED_PRECONDITION)

    def test_cancel_a_running_run(self):
        run = self.client.create_run(small_spec(self.pruner_address, epochs=1000))
        cancelled = self.client.cancel_run(run.run_id, reason="test over")
        self.assertIn(cancelled.state, (trainer_pb2.RUN_STATE_CANCELLED, trainer_pb2.RUN_STATE_RUNNING, trainer_pb2.RUN_STATE_QUEUED))
        final = self.client.wait_run(run.run_id, timeout=120)
        self.assertEqual(final.state, trainer_pb2.RUN_STATE_CANCELLED)
        self.assertIn("test over", final.error_message)

    def test_errors(self):
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.get_run("no-such-run")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(gcprune.GcpruneError) as caught:
            list(self.client.watch_run("no-such-run"))
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        bad = small_spec(self.pruner_address)
        bad["model"] = {"preset": "no-such-model"}
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.create_run(bad)
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("no-such-model", caught.exception.message)
        with self.assertRaisesRegex(ValueError, "run spec: .*noSuchField"):
            trainer.run_spec({"noSuchField": 1})


if __name__ == "__main__":
    support.main()
