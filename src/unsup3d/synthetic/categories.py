"""Object categories of the built-in synthetic generator: what depends on the category, in one record each.

A category supplies the shape and albedo distributions, the mesh and the albedo function; the viewpoint, light,
background and camera model of :mod:`.generator` are shared by all. ``face`` (the default) is described in
:mod:`.face_shapes` and :mod:`.face_textures`, ``car`` in :mod:`.car_shapes` and
:mod:`.car_textures`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from unsup3d.synthetic import car_shapes, car_textures, face_shapes, face_textures


@dataclass(frozen=True)
class Category:
    """The category-specific half of the generator.

    Attributes:
        name: the ``--category`` name.
        plural: how a data set of it is called (``"faces"``).
        shape_ranges: uniform ranges of the scalar shape parameters (recorded in ``dataset.json``).
        sample_shape, sample_albedo: ``rng -> dict`` of numpy parameters of one object.
        base_colour: albedo parameter holding the dominant (3,) colour, which sets the exposure.
        object_mesh: ``(stacked shape, size) -> (points (B, N, 3), normals (B, N, 3), is_main (N,) bool)`` in the
            canonical frame; ``is_main`` is False on the second part (the neck of a face, the tyres of a car).
        object_faces: ``size -> (F, 3)`` long faces of that mesh.
        albedo: ``(x, y, is_second_part, tex, shape, aa) -> (B, 3, N)`` albedo at canonical points (B, N).
    """

    name: str
    plural: str
    shape_ranges: Mapping[str, tuple[float, float]]
    sample_shape: Callable
    sample_albedo: Callable
    base_colour: str
    object_mesh: Callable
    object_faces: Callable
    albedo: Callable


CATEGORIES: dict[str, Category] = {
    category.name: category
    for category in (
        Category(
            "face", "faces", face_shapes.SHAPE_RANGES, face_shapes.sample_shape, face_textures.sample_albedo, "skin",
            face_shapes.object_mesh, face_shapes.object_faces, face_textures.albedo,
        ),
        Category(
            "car", "cars", car_shapes.SHAPE_RANGES, car_shapes.sample_shape, car_textures.sample_albedo, "paint",
            car_shapes.object_mesh, car_shapes.object_faces, car_textures.albedo,
        ),
    )
}  # fmt: skip


def get_category(name: str) -> Category:
    """The category called ``name``; a ValueError lists the choices for any other name."""
    if name not in CATEGORIES:
        raise ValueError(f"unknown synthetic category {name!r}: choose from {', '.join(CATEGORIES)}")
    return CATEGORIES[name]
