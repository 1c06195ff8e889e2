"""Runs clients/python/examples/prune_lenet5.py on a subset of Fashion-MNIST against a real pruner and
checks that every iteration reaches the scheduled sparsity exactly: round(s(j) * N) of LeNet-5's 430,500
prunable weights pruned (cubic schedule, cumulative count rule) and exactly those weights at 0."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import gcprune_test_support as support

EXAMPLE = os.path.join(os.environ.get("GCPRUNE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..")),
                       "clients", "python", "examples", "prune_lenet5.py")
DATA = "/usr/share/datasets/fashion-mnist"
N = 430500
TARGET, ITERATIONS = 0.9, 3


class PruneLenet5ExampleTest(unittest.TestCase):
    @unittest.skipUnless(os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")),
                         "dataset-fashion-mnist is not installed")
    def test_reaches_the_scheduled_sparsity_exactly(self):
        with support.pruner_server() as server, tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "results.json")
            done = subprocess.run(
                [sys.executable, EXAMPLE, "--address=" + server.address, "--data-dir=" + DATA,
                 "--train-subset=768", "--test-subset=256", "--pretrain-epochs=1", "--train-epochs=1",
                 "--iterations=%d" % ITERATIONS, "--target=%r" % TARGET, "--finetune-epochs=1", "--threads=1",
                 "--strict", "--json=" + out],
                capture_output=True, text=True, timeout=600)
            print(done.stdout)
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            with open(out) as f:
                results = json.load(f)
        self.assertEqual(results["prunable_weights"], N)
        self.assertEqual(len(results["iterations"]), ITERATIONS)
        for j, entry in enumerate(results["iterations"], start=1):
            with self.subTest(iteration=j):
                expected = round(TARGET * (1 - (1 - j / ITERATIONS) ** 3) * N)
                self.assertFalse(entry["skipped"], entry["reason"])
                self.assertEqual(entry["iteration"], j)
                self.assertEqual(entry["pruned"], expected)
                self.assertEqual(entry["pruned"] + entry["kept"], N)
                self.assertEqual(entry["zero_weights"], expected)
                self.assertEqual(entry["sparsity"], expected / N)
                self.assertEqual(entry["steps"], 3)  # 768 images in batches of 256
                self.assertGreaterEqual(entry["test_accuracy"], 0.0)
                self.assertIn("iteration %d/%d: target sparsity" % (j, ITERATIONS), done.stdout)
        self.assertEqual(results["final_sparsity"], round(TARGET * N) / N)
        self.assertEqual({k: v["numel"] for k, v in results["layers"].items()},
                         {"0.weight": 500, "3.weight": 25000, "7.weight": 400000, "9.weight": 5000})
        self.assertEqual(sum(v["zeros"] for v in results["layers"].values()), round(TARGET * N))
        self.assertEqual(len(results["finetune"]), 1)
        self.assertIn("final: sparsity 0.9000", done.stdout)


if __name__ == "__main__":
    support.main()
