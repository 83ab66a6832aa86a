"""The built-in synthetic data: faces and cars with exact ground truth (depth, view, light, keypoints).

``generator`` samples and renders them under the method's own image formation with the project's renderer (the
one package besides the model that draws on ``render`` and ``geometry`` to make images); ``categories`` says what
depends on the object category, ``face_shapes``/``face_textures`` and ``car_shapes``/``car_textures`` describe
each, ``paint`` holds the painting primitives they share, ``keypoints`` the faces' named keypoints, and
``dataset`` writes a set to disk (``unsup3d synth``) in the layout :mod:`unsup3d.data` reads back.
"""
