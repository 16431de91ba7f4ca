"""A Sim(3) pose graph over chunks, optimised with :func:`scipy.optimize.least_squares`.

Nodes are ``world_from_chunk`` similarities (node 0 is fixed: the world is the
first chunk's frame). An edge ``(i, j, T_ij)`` measures ``T_ij = chunk_i_from_chunk_j``
(from the frames the two chunks share, or through a loop chunk). The residual
of an edge is the 7-vector of the error similarity
``E = T_ij^-1 @ world_from_chunk_i^-1 @ world_from_chunk_j`` (identity when the
graph agrees with the measurement): ``[rotation vector, translation / unit,
log scale]``, each part scaled by the edge's weight, where ``unit`` is the
spread of the chunk's points (chunks are in the model's normalised scale).

Why scipy's ``least_squares``: it is a small, well-kept, already-installed
optimiser (trust-region reflective) that takes a sparse Jacobian pattern
(every residual touches two nodes, so hundreds of chunks stay cheap) and
robust losses (``soft_l1``, ``cauchy``) that keep one wrong loop edge from
bending the whole trajectory; a dedicated graph library (g2o, GTSAM) would be
a heavy compiled dependency for a problem of a few hundred variables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

from .sim3 import Sim3

__all__ = ["GraphEdge", "edge_residual", "optimize_pose_graph"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphEdge:
    """A measurement ``chunk_i_from_chunk_j``; ``unit`` is chunk j's length scale, ``weight`` its trust."""

    i: int
    j: int
    transform: Sim3
    unit: float = 1.0
    weight: float = 1.0


def edge_residual(edge: GraphEdge, world_from_i: Sim3, world_from_j: Sim3) -> np.ndarray:
    """The edge's 7 residuals ``[rotvec (rad), translation / unit, log scale]`` times its weight."""
    error = edge.transform.inverse() @ world_from_i.inverse() @ world_from_j
    rotvec = Rotation.from_matrix(error.rotation).as_rotvec()
    return edge.weight * np.concatenate([rotvec, error.translation / edge.unit, [np.log(error.scale)]])


def optimize_pose_graph(nodes: list[Sim3], edges: list[GraphEdge], *, loss: str = "linear",
                        loss_scale: float = 0.05, max_iterations: int = 100) -> list[Sim3]:
    """Refine ``world_from_chunk`` similarities so that all edges agree as well as possible; node 0 stays fixed.

    Args:
        nodes: initial ``world_from_chunk`` (e.g. from chaining consecutive alignments).
        edges: measurements between nodes (indices into ``nodes``).
        loss, loss_scale: scipy's robust loss and its soft threshold (in residual units).

    Returns:
        The optimised ``world_from_chunk`` (``nodes[0]`` unchanged).
    """
    n = len(nodes)
    if n < 2 or not edges:
        return list(nodes)
    for e in edges:
        if not (0 <= e.i < n and 0 <= e.j < n) or e.i == e.j:
            raise ValueError(f"edge ({e.i}, {e.j}) does not join two of the {n} nodes")
    x0 = np.concatenate([node.as_vector() for node in nodes[1:]])  # [(n - 1) * 7]

    def unpack(x: np.ndarray) -> list[Sim3]:
        return [nodes[0]] + [Sim3.from_vector(x[7 * k:7 * k + 7]) for k in range(n - 1)]

    def residuals(x: np.ndarray) -> np.ndarray:
        current = unpack(x)
        return np.concatenate([edge_residual(e, current[e.i], current[e.j]) for e in edges])

    sparsity = lil_matrix((7 * len(edges), 7 * (n - 1)), dtype=np.int8)
    for r, e in enumerate(edges):
        for node in (e.i, e.j):
            if node > 0:
                sparsity[7 * r:7 * r + 7, 7 * (node - 1):7 * node] = 1
    result = least_squares(residuals, x0, jac_sparsity=sparsity, loss=loss, f_scale=loss_scale,
                           max_nfev=max_iterations * (1 + len(x0) // 50), x_scale="jac", method="trf")
    log.debug("pose graph: %d nodes, %d edges, cost %.3g -> %.3g (%s)", n, len(edges),
              0.5 * float(residuals(x0) @ residuals(x0)), float(result.cost), result.message)
    return unpack(result.x)
