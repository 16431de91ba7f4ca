"""Sub-commands of the ``vggt3d`` CLI: one module each, with ``add_arguments(parser)`` and ``run(args) -> int``.

They are listed in :data:`vggt3d.cli.COMMANDS`.
"""
