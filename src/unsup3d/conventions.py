"""The method's fixed constants, in one torch-free module (``docs/conventions.md`` explains each).

Every layer reads them from here: the configuration's defaults, the camera, the view transform and the mesh
export.
"""

# The camera's field of view in degrees (the paper's and the original code's): the default of every ``fov``.
FOV_DEGREES = 10.0
# Views rotate points about this camera-frame point: ``X' = R (X − c) + c + t``.
ROTATION_CENTER = (0.0, 0.0, 1.0)
# Image sizes the networks have stages for (``unsup3d.nets.SUPPORTED_IMAGE_SIZES``; a test checks they agree).
IMAGE_SIZES = (64, 128, 256)
