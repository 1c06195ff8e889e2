"""Tests of gcprune.PrunerClient, PrunerSession and StepSender against a real gcprune-pruner on 127.0.0.1:
sessions, chunked and bfloat16 steps, masks by stream and by GetMasks, resumption with duplicates, gaps,
errors with their status codes, and the sender's reconnection across a restart of the server."""

import os
import subprocess
import tempfile
import time
import unittest

import grpc
import numpy as np

import gcprune
import gcprune_test_support as support
from gcprune import config
from gcprune._proto import pruner_pb2


def small_layout():
    return config.layout_from_shapes([("fc1.weight", (20, 30), True), ("fc1.bias", (20,), False), ("fc2.weight", (10, 20), True)])


def random_step(rng, iteration, step, sizes=((0, 600), (2, 200))):
    return gcprune.Step(
        iteration=iteration,
        loss_before=1.0,
        loss_after=1.0 - 0.01 * rng.random(),
        learning_rate=1e-3,
        deltas=[(i, rng.normal(size=n).astype(np.float32) * 1e-3) for i, n in sizes],
        step=step,
    )


class PrunerClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = support.pruner_server()
        cls.address = cls.server.start()
        cls.client = gcprune.PrunerClient(cls.address, timeout=20)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.close()

    def test_health(self):
        self.assertEqual(self.client.health(), "SERVING")
        self.assertEqual(self.client.health(""), "SERVING")
        self.assertEqual(self.client.health("no.such.Service"), "SERVICE_UNKNOWN")

    def test_two_iterations_reach_the_schedule(self):
        rng = np.random.default_rng(0)
        method = gcprune.method_config("causal-v2", target=0.5, iterations=2, seed=3)
        session = self.client.create_session(small_layout(), method, label="two iterations")
        self.assertEqual(session.next_step, 0)
        self.assertEqual(session.opened.total_iterations, 2)
        self.assertTrue(session.opened.wants_steps)
        self.assertEqual(session.opened.method.schedule.target_sparsity, 0.5)
        step = 0
        for iteration, expected_pruned in ((1, round(0.5 * (1 - 0.5 ** 3) * 800)), (2, 400)):
            for _ in range(12):
                session.send_step(random_step(rng, iteration, step))
                step += 1
            session.end_iteration(iteration, step - 1)
            masks = session.wait_masks(iteration, timeout=30)
            self.assertEqual(masks.iteration, iteration)
            self.assertEqual(masks.apply_at_step, step)
            self.assertEqual(masks.pruned, expected_pruned)
            self.assertEqual(int((masks.flat() == 0).sum()), expected_pruned)
            self.assertEqual(masks.final_iteration, iteration == 2)
        self.assertTrue(session.wait_acked(step - 1, timeout=10))
        session.close(complete=True)
        info = self.client.get_session(session.session_id)
        self.assertEqual(info.state, pruner_pb2.SESSION_STATE_COMPLETED)
        self.assertEqual(info.label, "two iterations")
        # GetMasks returns the same masks as the stream, for every iteration.
        by_call = self.client.get_masks(session.session_id, iteration=2)
        np.testing.assert_array_equal(by_call.flat(), masks.flat())
        self.assertEqual(self.client.get_masks(session.session_id, iteration=0).pruned, 0)
        report = self.client.get_report(session.session_id)
        self.assertEqual([r.iteration for r in report.iterations], [1, 2])
        self.assertEqual(report.iterations[0].num_samples, 12)
        self.assertIn(session.session_id, [s.session_id for s in self.client.list_sessions()])
        self.assertIn(session.session_id, [s.session_id for s in self.client.list_sessions(state="COMPLETED", page_size=1)])

    def test_large_tensor_is_chunked_and_bfloat16_is_accepted(self):
        rng = np.random.default_rng(1)
        layout = config.layout_from_shapes([("big.weight", (600, 1000), True)])
        session = self.client.create_session(layout, gcprune.method_config(target=0.5, iterations=1))
        self.assertLess(session.chunk_elements, 600000)  # so the step takes several StepChunk messages
        for step in range(3):
            session.send_step(random_step(rng, 1, step, sizes=((0, 600000),)), encoding="bfloat16")
        session.end_iteration(1, 2)
        masks = session.wait_masks(1, timeout=60)
        self.assertEqual(masks.pruned, 300000)
        self.assertEqual(masks.keep[0].size, 600000)
        session.close(complete=True)

    def test_resume_resends_duplicates_and_rejects_gaps(self):
        rng = np.random.default_rng(2)
        method = gcprune.method_config(target=0.5, iterations=1)
        first = self.client.create_session(small_layout(), method)
        steps = [random_step(rng, 1, s) for s in range(6)]
        for step in steps[:4]:
            first.send_step(step)
        self.assertTrue(first.wait_acked(3, timeout=10))
        first.cancel()
        # Resume: the server has 0..3; resending 2..5 acks the duplicates and stores 4 and 5.
        second = self.client.resume_session(first.session_id, expected_layout=small_layout())
        self.assertEqual(second.next_step, 4)
        self.assertEqual(second.opened.completed_iterations, 0)
        for step in steps[2:]:
            second.send_step(step)
        self.assertTrue(second.wait_acked(5, timeout=10))
        # A gap (step 7 when 6 is expected) ends the stream with OUT_OF_RANGE.
        second.send_step(random_step(rng, 1, 7))
        with self.assertRaises(gcprune.GcpruneError) as caught:
            second.wait_acked(7, timeout=10)
        self.assertEqual(caught.exception.code, grpc.StatusCode.OUT_OF_RANGE)
        self.assertTrue(second.done)
        third = self.client.resume_session(first.session_id)
        self.assertEqual(third.next_step, 6)
        third.end_iteration(1, 5)
        self.assertEqual(third.wait_masks(1, timeout=30).pruned, 400)
        third.close()
        self.assertEqual(self.client.get_report(first.session_id).iterations[0].num_samples, 6)

    def test_errors_carry_status_codes(self):
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.create_session(small_layout(), gcprune.method_config(target=1.2))
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("target_sparsity", caught.exception.message)
        self.assertIn("1.2", caught.exception.message)
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.resume_session("no-such-session")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.get_session("")
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        session = self.client.create_session(small_layout(), gcprune.method_config(iterations=1))
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.resume_session(session.session_id, expected_layout=config.layout_from_shapes([("x", (3,), True)]))
        self.assertEqual(caught.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.delete_session(session.session_id)
        self.assertEqual(caught.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.get_masks(session.session_id, iteration=1)
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        # A step of the wrong iteration ends the stream with FAILED_PRECONDITION.
        session.send_step(random_step(np.random.default_rng(0), 2, 0))
        with self.assertRaises(gcprune.GcpruneError) as caught:
            session.wait_acked(0, timeout=10)
        self.assertEqual(caught.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        deadline = time.monotonic() + 10  # the server detaches the ended stream asynchronously
        while self.client.get_session(session.session_id).attached and time.monotonic() < deadline:
            time.sleep(0.02)
        self.client.delete_session(session.session_id)
        with self.assertRaises(gcprune.GcpruneError) as caught:
            self.client.get_session(session.session_id)
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_unreachable_server_is_unavailable(self):
        client = gcprune.PrunerClient("127.0.0.1:%d" % support.unused_port(), timeout=2)
        with self.assertRaises(gcprune.UnavailableError):
            client.get_session("x")
        with self.assertRaises(gcprune.UnavailableError):
            client.create_session(small_layout(), open_timeout=2)
        with self.assertRaises(gcprune.UnavailableError):
            client.wait_ready(0.5)
        client.close()


class StepSenderTest(unittest.TestCase):
    def test_reconnects_and_resumes_across_a_server_restart(self):
        rng = np.random.default_rng(4)
        with support.pruner_server() as server:
            client = gcprune.PrunerClient(server.address, timeout=10)
            events = []
            sender = gcprune.StepSender(
                client, small_layout(), gcprune.method_config(target=0.5, iterations=2, seed=5),
                backoff=(0.05, 0.5), on_event=lambda kind, payload: events.append(kind),
            )
            self.assertTrue(sender.wait_connected(10))
            sender.begin_iteration(1)
            for _ in range(5):
                self.assertTrue(sender.submit(random_step(rng, 1, -1)))
            deadline = time.monotonic() + 10
            while sender.unacked_steps and time.monotonic() < deadline:
                time.sleep(0.02)
            port = server.port
            server.stop()
            # Steps keep being accepted while the server is down; they are kept for resending.
            for _ in range(5):
                self.assertTrue(sender.submit(random_step(rng, 1, -1)))
            deadline = time.monotonic() + 10
            while sender.status == "connected" and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(sender.status, "disconnected")
            server.start(port=port)
            sender.end_iteration(1)
            masks = sender.wait_masks(1, timeout=60)
            self.assertIsNotNone(masks, sender.last_error)
            self.assertEqual(masks.apply_at_step, 10)
            self.assertGreaterEqual(sender.reconnects, 1)
            self.assertEqual(client.get_report(sender.session_id).iterations[0].num_samples, 10)
            self.assertIn("status", events)
            sender.close()
            self.assertEqual(sender.status, "closed")
            client.close()

    def test_unreachable_server_drops_an_attempt_beyond_the_budget(self):
        rng = np.random.default_rng(5)
        client = gcprune.PrunerClient("127.0.0.1:%d" % support.unused_port(), timeout=2)
        sender = gcprune.StepSender(client, small_layout(), max_unacked_bytes=10000, backoff=(0.05, 0.2))
        self.assertFalse(sender.wait_connected(0.5))
        self.assertEqual(sender.status, "disconnected")
        sender.begin_iteration(1)
        accepted = [sender.submit(random_step(rng, 1, -1), timeout=5) for _ in range(6)]
        deadline = time.monotonic() + 10
        while not sender.attempt_lost() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(sender.attempt_lost(), accepted)
        sender.end_iteration(1)
        self.assertIsNone(sender.wait_masks(1, timeout=5))
        sender.close(timeout=2)
        client.close()


class SecurityTest(unittest.TestCase):
    """A pruner that requires TLS and a bearer token."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.cert, key = os.path.join(cls.tmp.name, "cert.pem"), os.path.join(cls.tmp.name, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cls.cert],
            check=True, capture_output=True)
        cls.server = support.pruner_server(["--tls_cert_file=" + cls.cert, "--tls_key_file=" + key, "--auth_token=s3cret"])
        cls.address = cls.server.start()
        with open(cls.cert, "rb") as f:
            cls.roots = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.tmp.cleanup()

    def client(self, **kwargs):
        return gcprune.PrunerClient(self.address, tls=True, root_certificates=self.roots, timeout=10, **kwargs)

    def test_token_and_tls(self):
        with self.client(token="s3cret") as client:
            session = client.create_session(small_layout(), gcprune.method_config(iterations=1))
            session.close()
            self.assertEqual(client.get_session(session.session_id).session_id, session.session_id)
        with self.client() as client:
            self.assertEqual(client.health(), "SERVING")  # health is exempt from the token
            with self.assertRaises(gcprune.GcpruneError) as caught:
                client.get_session(session.session_id)
            self.assertEqual(caught.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        with self.client(token="wrong") as client:
            with self.assertRaises(gcprune.GcpruneError) as caught:
                client.create_session(small_layout())
            self.assertEqual(caught.exception.code, grpc.StatusCode.PERMISSION_DENIED)
        with gcprune.PrunerClient(self.address, token="s3cret", timeout=3) as plaintext:
            with self.assertRaises(gcprune.GcpruneError):
                plaintext.get_session(session.session_id)


if __name__ == "__main__":
    support.main()
