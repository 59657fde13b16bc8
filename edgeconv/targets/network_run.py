"""A generated network on a target: the whole ``net_run`` and every node on its own,
each node's device output compared with the reference model's tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeconv import progress


@dataclass(frozen=True)
class NodeResult:
    """One node run on the device on the reference model's inputs for that node."""

    step: int
    opcode: str
    layer: str
    tensor: str
    output_shape: tuple[int, ...]
    count: int | None
    count_unit: str | None
    macs: int | None
    mismatches: int
    device: np.ndarray
    reference: np.ndarray
    fetched: bool = True  # False: CRC mode, the device's CRC-32 equalled the reference's

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0


def trace(session: Any, network: Any, x: np.ndarray, *, crc: bool = False) -> list[NodeResult]:
    """Run every node of ``network`` on the device, fed with the reference model's values
    of its input tensors for ``x``; return the device output next to the reference.

    ``crc=True`` is the mode for a slow link: the device's CRC-32 of each output (sent in
    its OUTPUT frame) is compared with the CRC-32 of the reference tensor and the output
    itself is read only on a mismatch; a node whose CRC matched reports ``fetched=False``
    and the reference as ``device`` (equal up to a CRC-32 collision, 2**-32 for a random
    error).  Counts are those of the same runs in both modes."""
    model = network.model
    values = model.trace(np.asarray(x).reshape(model.inputs[0].shape))
    results = []
    kernels = [step for step in network.steps if step.kind == "kernel"]
    for step in progress.bar(kernels, desc=f"{session.spec}: node by node", unit="node"):
        layer = step.layer
        parts = [values[model.key(t)].ravel() for t in step.inputs]
        packed = (parts[0] if len(parts) == 1 else np.concatenate(parts)).reshape(
            layer.input_shape)
        reference = values[model.key(step.output)].reshape(layer.output_shape)
        device = session.run(layer.name, packed, expected=reference if crc else None)
        macs = int(layer.macs()) if hasattr(layer, "macs") else None
        results.append(NodeResult(step.index, step.opcode, layer.name,
                                  model.key(step.output), tuple(device.shape),
                                  session.last_count, session.count_unit, macs,
                                  int(np.count_nonzero(device != reference)), device,
                                  reference, session.last_fetched))
    return results
