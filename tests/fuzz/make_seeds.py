#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_optim_state and fuzz_checkpoint (tests/fuzz/corpus/...).

The files hold state for the model and optimizers of fuzz_model.hpp: a Sequential of two Tiny
modules (weight (2, 3), bias (3), buffer running (3)), SGD with momentum or Adam over the four
parameters. Byte 0 of every input is the targets' option byte, the rest a safetensors file.
Run from the repository root: python3 tests/fuzz/make_seeds.py
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SHAPES = [(2, 3), (3,), (2, 3), (3,)]  # parameters 0..3: 0.weight, 0.bias, 1.weight, 1.bias


def safetensors(tensors, metadata=None):
    """tensors: {name: (shape, [values])} as F32, in sorted-name order, header padded to 8."""
    header, data = {}, b""
    for name in sorted(tensors):
        shape, values = tensors[name]
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def filled(shape, v):
    return (shape, [v] * numel(shape))


def optimizer_state(adam, lr=0.01):
    out = {"lr": ((), [lr])}
    for i, shape in enumerate(SHAPES):
        if adam:
            out["state.%d.exp_avg" % i] = filled(shape, 0.1)
            out["state.%d.exp_avg_sq" % i] = filled(shape, 0.01)
            out["state.%d.step" % i] = ((), [3.0])
        else:
            out["state.%d.momentum_buffer" % i] = filled(shape, 0.2)
    return out


def model_state():
    out = {}
    for m in (0, 1):
        out["%d.weight" % m] = filled((2, 3), 0.75)
        out["%d.bias" % m] = filled((3,), -0.5)
        out["%d.running" % m] = filled((3,), 2.0)
    return out


def checkpoint(adam, with_optimizer=True, step="7", extra=None):
    tensors = {"model." + k: v for k, v in model_state().items()}
    meta = {"format": "tapegrad-checkpoint", "version": "1", "step": step}
    if with_optimizer:
        tensors.update({"optim." + k: v for k, v in optimizer_state(adam).items()})
        meta["optimizer"] = "Adam" if adam else "SGD"
    meta.update(extra or {})
    return safetensors(tensors, meta)


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def main():
    adam, sgd = optimizer_state(True), optimizer_state(False)
    write("optim_state", "valid_sgd", b"\x00" + safetensors(sgd))
    write("optim_state", "valid_adam", b"\x01" + safetensors(adam))
    write("optim_state", "valid_lr_only", b"\x01" + safetensors({"lr": ((1,), [0.5])}))
    bad_key = dict(sgd)
    bad_key["state.0junk.momentum_buffer"] = bad_key.pop("state.0.momentum_buffer")
    write("optim_state", "invalid_junk_index", b"\x00" + safetensors(bad_key))
    bad_shape = dict(adam)
    bad_shape["state.1.exp_avg"] = filled((2, 3), 0.1)
    write("optim_state", "invalid_shape", b"\x01" + safetensors(bad_shape))
    write("optim_state", "invalid_negative_lr", b"\x00" + safetensors({"lr": ((), [-1.0])}))

    write("checkpoint", "valid_adam", b"\x03" + checkpoint(True))
    write("checkpoint", "valid_sgd", b"\x02" + checkpoint(False))
    write("checkpoint", "valid_model_only", b"\x00" + checkpoint(True, with_optimizer=False))
    write("checkpoint", "invalid_wrong_optimizer", b"\x02" + checkpoint(True))
    write("checkpoint", "invalid_step", b"\x03" + checkpoint(True, step="0x7"))
    missing = {"model." + k: v for k, v in model_state().items() if k != "1.bias"}
    write("checkpoint", "invalid_missing_key",
          b"\x00" + safetensors(missing, {"format": "tapegrad-checkpoint", "version": "1", "step": "1"}))


if __name__ == "__main__":
    main()
