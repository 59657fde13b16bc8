"""Node by node with a CRC per tensor (``session.trace(x, crc=True)``): each node's output
is compared on its CRC-32 (sent by the device in the OUTPUT frame) with the reference
tensor's, and read only on a mismatch; per-tensor checks on the boards other than the M4."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_network import _input

import edgeconv
from edgeconv import targets
from edgeconv.codegen import Network
from edgeconv.model import Model, read_tflite
from edgeconv.targets.network_run import trace
from edgeconv.targets.protocol import Msg

MODELS = Path(__file__).parent / "models"


def _count_reads(session) -> list[int]:
    """Counts the READ requests the session's client sends from now on."""
    reads = [0]
    request = session.client.request

    def counting(msg_type, body=b"", *args, **kwargs):
        if msg_type == Msg.READ:
            reads[0] += 1
        return request(msg_type, body, *args, **kwargs)

    session.client.request = counting
    return reads


def _tampered(path: Path, operator: int) -> Model:
    """The model with operator ``operator``'s bias raised by 5000 (its output differs)."""
    info = read_tflite(path)
    tensors = list(info.tensors)
    bias = info.operators[operator].inputs[2]
    tensors[bias] = dataclasses.replace(tensors[bias], data=tensors[bias].data + 5000)
    return Model(dataclasses.replace(info, tensors=tuple(tensors)))


def test_crc_mode_reads_only_the_mismatching_tensor() -> None:
    """ds_cnn on native (4 KB frames): in full mode the 8,000-byte node outputs need READs;
    in CRC mode none is read, every node is bit-exact by CRC with the same per-node
    counts reported; against a reference whose conv 4 differs, exactly that node's
    output is read (and its real values reported), and the error shows only there."""
    path = MODELS / "ds_cnn.tflite"
    model = edgeconv.load(path)
    x = _input(model, 2)
    with targets.open("native", model) as session:
        reads = _count_reads(session)
        full = session.trace(x)
        full_reads, reads[0] = reads[0], 0
        fast = session.trace(x, crc=True)
        assert full_reads > 0 and reads[0] == 0
        assert all(n.bit_exact and n.fetched for n in full)
        assert all(n.bit_exact and not n.fetched for n in fast)
        assert [n.layer for n in fast] == [n.layer for n in full]
        assert all(n.count is not None and n.count > 0 for n in fast)
        # a reference that differs in operator 4 (a CONV_2D): the device is right there
        net = session.network
        wrong = Network(_tampered(path, 4), name=net.stem)
        results = trace(session, wrong, x, crc=True)
        assert reads[0] > 0
    fetched = [n.step for n in results if n.fetched]
    assert fetched[0] == 4 and not results[4].bit_exact
    np.testing.assert_array_equal(results[4].device, full[4].device)  # the device's values
    assert all(n.bit_exact for n in results[:4])


def test_expected_must_be_one_item_of_the_output_shape() -> None:
    model = edgeconv.load(MODELS / "conv_chain.tflite")
    with targets.open("native", model) as session:
        node = session.network.layers[0]
        x = _input(model, 0)
        with pytest.raises(ValueError, match=r"expected: shape \(3,\).*allowed is one item"):
            session.run(node.name, x, expected=np.zeros(3, np.int8))
        with pytest.raises(ValueError, match=r"crc=1: allowed are True, False"):
            session.trace(x, crc=1)


# Node by node, a CRC per tensor, on boards where the other tests check the whole network
# only: the fixture with the most op kinds on the M0, the 16x8 one on the M55.
@pytest.mark.parametrize("fixture, spec", [("misc_ops", "qemu:mps2-an385:cortex-m0"),
                                           ("small_cnn_16x8", "qemu:mps3-an547")])
def test_node_by_node_crc_on_more_boards(fixture: str, spec: str) -> None:
    assert shutil.which("qemu-system-arm"), "qemu-system-arm not installed"
    model = edgeconv.load(MODELS / f"{fixture}.tflite")
    with targets.open(spec, model) as session:
        nodes = session.trace(_input(model, 4), crc=True)
    kernels = [s for s in session.network.steps if s.kind == "kernel"]
    assert [n.layer for n in nodes] == [s.layer.name for s in kernels]
    assert all(n.bit_exact for n in nodes), [(n.layer, n.mismatches) for n in nodes]
    assert not any(n.fetched for n in nodes)


def test_verify_crc_and_semantics(capsys) -> None:
    """``edgeconv verify MODEL --crc --semantics tflm``: the TFLM-semantics network, each
    node checked on its CRC (the table says so)."""
    from edgeconv.cli import main

    path = MODELS / "fc_autoencoder.tflite"
    assert main(["verify", str(path), "--target", "native", "--crc", "--semantics",
                 "tflm"]) == 0
    out = capsys.readouterr().out
    assert out.count(" yes (CRC)") == 10 and "whole network: bit-exact" in out
