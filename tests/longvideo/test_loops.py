"""Loop candidates: planted revisits found, time gap respected, the same in any block size; loop chunk frames."""

from __future__ import annotations

import numpy as np
import pytest

from vggt3d.longvideo.loops import LoopCandidate, loop_candidates, loop_chunk_frames


def test_planted_revisit_is_found_in_any_block_size():
    rng = np.random.default_rng(0)
    desc = rng.normal(size=(300, 32))
    desc[250:260] = desc[20:30] + 0.01 * rng.normal(size=(10, 32))  # frames 250-259 revisit 20-29
    desc[40:45] = desc[35:40]  # near in time: never a loop
    found = [loop_candidates(300, descriptors=desc, min_gap=50, threshold=0.9, block=b) for b in (7, 64, 512)]
    assert found[0] == found[1] == found[2]
    assert len(found[0]) == 1 and 20 <= found[0][0].a < 30 and found[0][0].b == found[0][0].a + 230


def test_loop_chunk_frames_split_the_two_visits():
    a, b = loop_chunk_frames(LoopCandidate(3, 290, 1.0), 10, 300)
    assert a == (1, 2, 3, 4, 5) and b == (288, 289, 290, 291, 292)  # centred on each visit
    a, b = loop_chunk_frames(LoopCandidate(100, 299, 1.0), 8, 300)
    assert len(a) == len(b) == 4 and b[-1] == 299
    with pytest.raises(ValueError, match=">= 4"):
        loop_chunk_frames(LoopCandidate(0, 10, 1.0), 2, 20)
    with pytest.raises(ValueError, match="needs descriptors"):
        loop_candidates(10)
