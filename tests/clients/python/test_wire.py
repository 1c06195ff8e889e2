"""Tests of gcprune.wire (encodings, chunk planning, bitmasks) and of the mask assembly, without a server.
bfloat16 is checked against torch's own float32 -> bfloat16 conversion as an independent reference."""

import unittest

import numpy as np
import torch

import gcprune_test_support as support
from gcprune import config, wire
from gcprune._proto import common_pb2, pruner_pb2
from gcprune.pruner import _MaskAssembler


class EncodingTest(unittest.TestCase):
    def test_bfloat16_rounds_to_nearest_even_like_torch(self):
        rng = np.random.default_rng(1)
        values = np.concatenate([
            rng.normal(size=10000).astype(np.float32) * np.float32(10.0) ** rng.integers(-30, 30, 10000),
            np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 3.4e38, 1e-45, 1.00390625, 1.01171875], np.float32),
        ]).astype(np.float32)
        ours = wire.to_bfloat16_bits(values)
        reference = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        np.testing.assert_array_equal(ours, reference)

    def test_bfloat16_keeps_nan(self):
        decoded = wire.from_bfloat16_bits(wire.to_bfloat16_bits(np.array([np.nan, 1.0], np.float32)))
        self.assertTrue(np.isnan(decoded[0]))
        self.assertEqual(decoded[1], 1.0)

    def test_decode_bytes_matches_encode(self):
        values = np.linspace(-3, 3, 101, dtype=np.float32)
        for encoding in (wire.FLOAT32, wire.BFLOAT16, wire.FLOAT16):
            with self.subTest(encoding=encoding):
                data = wire.encode(values, encoding).tobytes()
                self.assertEqual(len(data), values.size * wire.encoding_width(encoding))
                np.testing.assert_array_equal(wire.decode_bytes(data, encoding), wire.decode(wire.encode(values, encoding), encoding))
        np.testing.assert_array_equal(wire.decode_bytes(values.tobytes(), wire.FLOAT32), values)

    def test_decode_bytes_rejects_partial_elements(self):
        with self.assertRaisesRegex(ValueError, "3 bytes is not a positive multiple of 2"):
            wire.decode_bytes(b"abc", wire.BFLOAT16)
        with self.assertRaisesRegex(ValueError, "0 bytes"):
            wire.decode_bytes(b"", wire.FLOAT32)

    def test_parse_encoding(self):
        self.assertEqual(wire.parse_encoding("bf16"), wire.BFLOAT16)
        self.assertEqual(wire.parse_encoding("Float32"), wire.FLOAT32)
        self.assertEqual(wire.parse_encoding(3), wire.FLOAT16)
        with self.assertRaisesRegex(ValueError, "encoding: expected float32, bfloat16 or float16, got 'int8'"):
            wire.parse_encoding("int8")
        with self.assertRaisesRegex(ValueError, "got 7"):
            wire.parse_encoding(7)


class PlanChunksTest(unittest.TestCase):
    def test_every_element_once_and_messages_bounded(self):
        sizes = [(0, 10), (2, 1), (5, 25), (7, 7)]
        for limit in (1, 3, 7, 10, 43, 1000):
            with self.subTest(limit=limit):
                messages = wire.plan_chunks(sizes, limit)
                seen = {i: np.zeros(n, int) for i, n in sizes}
                for runs in messages:
                    self.assertLessEqual(sum(c for _, _, c in runs), limit)
                    for i, offset, count in runs:
                        seen[i][offset:offset + count] += 1
                for i, n in sizes:
                    np.testing.assert_array_equal(seen[i], np.ones(n, int))
                self.assertEqual(len(messages), -(-43 // limit))

    def test_rejects_zero_limit(self):
        with self.assertRaisesRegex(ValueError, "max_elements: expected >= 1, got 0"):
            wire.plan_chunks([(0, 4)], 0)


class BitmaskTest(unittest.TestCase):
    def test_protocol_example(self):
        # numel = 10, weights 0 and 9 pruned -> bytes {0xFE, 0x01} (LSB first, 1 = kept).
        keep = np.ones(10, np.uint8)
        keep[[0, 9]] = 0
        self.assertEqual(wire.pack_mask(keep), b"\xfe\x01")
        np.testing.assert_array_equal(wire.unpack_mask(b"\xfe\x01", 10), keep)

    def test_rejects_wrong_size_and_padding(self):
        with self.assertRaisesRegex(ValueError, "1 bytes for 10 elements, expected 2"):
            wire.unpack_mask(b"\xff", 10)
        with self.assertRaisesRegex(ValueError, "padding bits after element 10 are set"):
            wire.unpack_mask(b"\xff\x07", 10)


def _layout():
    return config.layout_from_shapes([("a.weight", (3, 5), True), ("a.bias", (3,), False), ("b.weight", (9,), True)])


def _update(runs, last=True, iteration=1):
    update = pruner_pb2.MaskUpdate(iteration=iteration, apply_at_step=10, last_part=last)
    for tensor, offset, keep in runs:
        update.masks.add(tensor_index=tensor, offset=offset, num_elements=len(keep), bits=wire.pack_mask(keep))
    return update


class MaskAssemblyTest(unittest.TestCase):
    def test_parts_and_runs_assemble(self):
        rng = np.random.default_rng(3)
        a, b = rng.integers(0, 2, 15).astype(np.uint8), rng.integers(0, 2, 9).astype(np.uint8)
        assembler = _MaskAssembler(_layout())
        self.assertIsNone(assembler.add(_update([(0, 0, a[:8]), (2, 8, b[8:])], last=False)))
        masks = assembler.add(_update([(0, 8, a[8:]), (2, 0, b[:8])]))
        np.testing.assert_array_equal(masks.keep[0], a)
        np.testing.assert_array_equal(masks.keep[2], b)
        np.testing.assert_array_equal(masks.flat(), np.concatenate([a, b]))
        self.assertEqual(masks.apply_at_step, 10)

    def test_errors_name_the_run(self):
        cases = [
            ([(1, 0, np.ones(3))], "tensor 1 is not a prunable tensor"),
            ([(0, 8, np.ones(8))], r"tensor 0 run \[8, 16\) is outside \[0, 15\)"),
            ([(0, 0, np.ones(15)), (0, 8, np.ones(7))], r"tensor 0 run \[8, 15\) overlaps another"),
            ([(0, 0, np.ones(15))], "tensor 2 has no mask bits from element 0"),
            ([(0, 0, np.ones(15)), (2, 0, np.ones(8))], "tensor 2 has no mask bits from element 8"),
        ]
        for runs, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(ValueError, message):
                    _MaskAssembler(_layout()).add(_update(runs))


class MethodConfigTest(unittest.TestCase):
    def test_names_and_dicts(self):
        c = config.method_config("causal-v2", target=0.8, iterations=4, seed=7, solver="exact", sample_encoding="bf16")
        self.assertEqual(c.method, common_pb2.METHOD_CAUSAL_V2)
        self.assertEqual((c.schedule.target_sparsity, c.schedule.iterations, c.seed), (0.8, 4, 7))
        self.assertEqual((c.solver, c.sample_encoding), (common_pb2.SOLVER_EXACT, common_pb2.VALUE_ENCODING_BFLOAT16))
        d = config.method_config({"method": "METHOD_MAGNITUDE_GLOBAL", "schedule": {"targetSparsity": 0.5}})
        self.assertEqual((d.method, d.schedule.target_sparsity), (common_pb2.METHOD_MAGNITUDE_GLOBAL, 0.5))
        self.assertFalse(config.method_config("causal-v2").schedule.HasField("target_sparsity"))
        with self.assertRaisesRegex(ValueError, "method: unknown value 'causal-v3'"):
            config.method_config("causal-v3")


if __name__ == "__main__":
    support.main()
