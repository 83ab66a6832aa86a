"""Property-based: any depth map gives a mesh that writes and reads back, or a ValueError; nothing else."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unsup3d.outputs import read_obj, write_obj
from unsup3d.render.grid_mesh import depth_grid_mesh

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(
    depth=st.integers(2, 12).flatmap(
        lambda s: arrays(np.float64, (s, s), elements=st.floats(0.5, 1.5) | st.sampled_from([np.nan, np.inf, 0.0]))
    ),
    trim=st.integers(0, 6),
    fov=st.floats(1.0, 120.0),
)
def test_depth_maps_round_trip_through_obj(tmp_path, depth, trim, fov):
    try:
        vertices, faces, uvs = depth_grid_mesh(depth, fov, trim_border=trim)
    except ValueError as error:
        size = depth.shape[0]
        assert not np.isfinite(depth).all() or trim > (size - 2) // 2, error
        return
    assert np.isfinite(vertices).all() and np.isfinite(uvs).all()
    path = write_obj(tmp_path / "mesh.obj", vertices, faces, uvs)
    read_vertices, read_faces = read_obj(path)
    np.testing.assert_allclose(read_vertices, vertices, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(read_faces, faces)


@SETTINGS
@given(
    vertices=arrays(
        np.float64, st.tuples(st.integers(0, 6), st.integers(2, 4)), elements=st.floats(-1e6, 1e6) | st.just(np.nan)
    ),
    faces=arrays(np.int64, st.tuples(st.integers(0, 4), st.integers(2, 4)), elements=st.integers(-2, 8)),
)
def test_write_obj_rejects_bad_arrays_cleanly(tmp_path, vertices, faces):
    uvs = np.zeros((len(vertices), 2))
    try:
        path = write_obj(tmp_path / "mesh.obj", vertices, faces, uvs, texture_filename=None)
    except ValueError:
        return
    read_vertices, read_faces = read_obj(path)
    np.testing.assert_allclose(read_vertices, vertices, rtol=1e-6)
    np.testing.assert_array_equal(read_faces, faces)
