"""Figures a generate run writes about its outputs: turntable speckle and mesh figures."""

import numpy as np
import trimesh

from dreamfusion3d.generate.outputs import mesh_figures, speckle_fraction


def test_speckle_counts_only_visible_pixels_away_from_the_silhouette():
    h = w = 40
    yy, xx = np.mgrid[:h, :w]
    alpha = np.where((yy - 20) ** 2 + (xx - 20) ** 2 <= 64, 1.0, 0.0)
    alpha[20, 29] = 0.3  # a soft edge pixel right next to the silhouette: not speckle
    clean = speckle_fraction(alpha[None])
    assert clean[0] == 0.0
    alpha[2, 2] = 0.5  # a floater far from the object
    alpha[37, 5] = 0.04  # too faint to see
    assert speckle_fraction(alpha[None])[0] == 1.0 / (h * w)
    assert speckle_fraction(np.zeros((2, h, w))).tolist() == [0.0, 0.0]


def test_mesh_figures_count_pieces():
    one = trimesh.creation.icosphere(subdivisions=2)
    two = trimesh.util.concatenate([one, trimesh.creation.box().apply_translation([3, 0, 0])])
    f1, f2 = mesh_figures(one), mesh_figures(two)
    assert f1["faces"] == len(one.faces) and f1["watertight"] and f1["components"] == 1
    assert f2["components"] == 2
    assert f1["genus"] == 0 and f2["genus"] == 0
    ring = trimesh.creation.torus(1.0, 0.3)
    two_rings = trimesh.util.concatenate([ring, ring.copy().apply_translation([4, 0, 0])])
    assert mesh_figures(ring)["genus"] == 1 and mesh_figures(two_rings)["genus"] == 2
    open_sheet = trimesh.creation.box()
    open_sheet.update_faces(np.arange(len(open_sheet.faces)) > 0)
    assert not mesh_figures(open_sheet)["watertight"] and mesh_figures(open_sheet)["genus"] is None
